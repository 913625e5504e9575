"""The synthetic pedestrian world: people walking on a plaza, seen by synchronised pinhole cameras.

Everything is drawn from one seeded generator, so a seed gives the same world byte for byte. A scene is
a square plaza (metres, ground plane ``y = 0``) watched by ``views`` cameras placed around it. People
enter at the plaza's edge, walk (with a gentle sway) towards a point on another edge and leave; some
stand still. Each person has attributes (clothing colours, bag, height, speed) and one identity shared
by every view. Per frame and view, the ground truth is each visible person's box (integer pixels),
visibility (fraction of the box that is inside the image and not hidden by nearer people, from a
coarse occupancy grid), visible box and head box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "blue": (40, 70, 200),
    "green": (40, 150, 60),
    "yellow": (225, 200, 40),
    "black": (25, 25, 25),
    "white": (235, 235, 235),
    "gray": (128, 128, 128),
    "orange": (240, 130, 30),
    "purple": (130, 50, 160),
    "brown": (120, 80, 40),
}
BAGS = ("none", "backpack", "handbag")
GRID = 4  # pixels per cell of the occlusion grid
MIN_HEIGHT_PX = 12


@dataclass(frozen=True)
class WorldConfig:
    """What to generate. ``omnipt-data synth`` sets the common fields; the rest (lens, ground, slivers)
    are for worlds drawn for a small model, as the training demo's."""

    seed: int = 0
    scenes: int = 4
    frames: int = 48
    views: int = 1
    people: int = 8
    width: int = 640
    height: int = 360
    fps: float = 10.0
    static_fraction: float = 0.1
    plaza: float = 16.0
    #: Focal length relative to the default lens: 2.0 draws every person twice as large (a narrower view).
    zoom: float = 1.0
    #: 0 to 1: the background shades from blue on the left to red on the right, so that a small vision
    #: model, whose patches know only their relative positions, can tell where in the frame it looks.
    ground_ramp: float = 0.0
    #: The last this many scenes are the validation split (when there are more scenes than that).
    val_scenes: int = 1
    #: A person with fewer pixels of their width inside the image is left out of the frame, neither drawn
    #: nor annotated: a box a few pixels wide at the image edge is no target for a small model to learn.
    min_visible_width: int = 1


@dataclass(frozen=True)
class Camera:
    position: np.ndarray  # (3,) metres
    rotation: np.ndarray  # (3, 3) world -> camera
    focal: float
    width: int
    height: int

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and depths (N,) of world points (N, 3)."""
        cam = (points - self.position) @ self.rotation.T
        depth = cam[:, 2]
        safe = np.where(depth > 1e-6, depth, np.nan)
        u = self.focal * cam[:, 0] / safe + self.width / 2
        v = -self.focal * cam[:, 1] / safe + self.height / 2
        return np.stack([u, v], axis=1), depth


@dataclass
class Person:
    track_id: int
    start: np.ndarray
    velocity: np.ndarray
    enter_frame: int
    exit_frame: int
    height_m: float
    static: bool
    upper: str
    lower: str
    bag: str
    sway_phase: float
    sway_amplitude: float

    def position(self, frame: int, fps: float) -> np.ndarray:
        t = (frame - self.enter_frame) / fps
        base = self.start + self.velocity * t
        speed = float(np.linalg.norm(self.velocity))
        if speed == 0:
            return base
        normal = np.array([-self.velocity[1], self.velocity[0]]) / speed
        return base + normal * self.sway_amplitude * math.sin(self.sway_phase + 0.6 * t)

    @property
    def speed(self) -> float:
        return float(np.linalg.norm(self.velocity))

    def attributes(self) -> dict[str, str]:
        return {
            "upper_color": self.upper,
            "lower_color": self.lower,
            "bag": self.bag,
            "height_m": f"{self.height_m:.2f}",
            "speed_mps": f"{self.speed:.2f}",
            "motion": "standing" if self.static else "walking",
        }


@dataclass
class Scene:
    name: str
    cameras: list[Camera]
    people: list[Person]
    frames: int
    fps: float


@dataclass
class World:
    """The generated world and its ground truth (``boxes``: one row per person, frame and view)."""

    config: WorldConfig
    scenes: list[Scene]
    boxes: pl.DataFrame = field(repr=False)

    def view_name(self, view: int) -> str:
        return f"View{view}"


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    up = np.cross(forward, right)
    return np.stack([right, up, forward])


def _cameras(config: WorldConfig, rng: np.random.Generator) -> list[Camera]:
    cameras = []
    half = config.plaza / 2
    for k in range(config.views):
        angle = -math.pi / 2 + 2 * math.pi * k / max(config.views, 1) + rng.uniform(-0.15, 0.15)
        distance = half + rng.uniform(5.0, 7.0)
        position = np.array([distance * math.cos(angle), rng.uniform(3.5, 5.0), distance * math.sin(angle)])
        target = np.array([rng.uniform(-1, 1), 0.8, rng.uniform(-1, 1)])
        cameras.append(
            Camera(
                position,
                _look_at(position, target),
                0.9 * config.zoom * config.width,
                config.width,
                config.height,
            )
        )
    return cameras


def _edge_point(rng: np.random.Generator, half: float, edge: int) -> np.ndarray:
    s = rng.uniform(-half, half)
    return np.array([[-half, s], [half, s], [s, -half], [s, half]][edge])


def _people(config: WorldConfig, rng: np.random.Generator) -> list[Person]:
    half = config.plaza / 2
    colours = list(COLOURS)
    people: list[Person] = []
    # Arrivals keep about `config.people` on the plaza: a crossing lasts plaza / speed seconds.
    mean_crossing = config.plaza / 1.3 * config.fps
    arrival_gap = max(mean_crossing / max(config.people, 1), 1.0)
    frame = 1 - int(mean_crossing)  # start "in the past" so the first frame is already populated
    while frame <= config.frames:
        static = rng.random() < config.static_fraction
        edge = int(rng.integers(4))
        if static:
            start = rng.uniform(-half * 0.7, half * 0.7, size=2)
            velocity = np.zeros(2)
            duration = int(rng.integers(config.frames // 2 + 1, config.frames * 2 + 2))
        else:
            start = _edge_point(rng, half, edge)
            end = _edge_point(rng, half, (edge + int(rng.integers(1, 4))) % 4)
            speed = rng.uniform(0.7, 1.9)
            distance = float(np.linalg.norm(end - start))
            if distance < 2.0:
                frame += 1
                continue
            velocity = (end - start) / distance * speed
            duration = int(distance / speed * config.fps)
        upper, lower = rng.choice(colours, size=2, replace=False)
        people.append(
            Person(
                track_id=len(people) + 1,
                start=start,
                velocity=velocity,
                enter_frame=frame,
                exit_frame=frame + duration,
                height_m=float(rng.uniform(1.5, 1.95)),
                static=static,
                upper=str(upper),
                lower=str(lower),
                bag=str(rng.choice(BAGS)),
                sway_phase=float(rng.uniform(0, 2 * math.pi)),
                sway_amplitude=0.0 if static else float(rng.uniform(0.0, 0.4)),
            )
        )
        frame += max(1, int(rng.exponential(arrival_gap)))
    return [p for p in people if p.exit_frame >= 1]


def _frame_boxes(scene: Scene, camera: Camera, frame: int, min_visible_width: int) -> list[dict]:
    """Ground-truth rows of one frame of one view, nearest people first for occlusion."""
    present = [p for p in scene.people if p.enter_frame <= frame <= p.exit_frame]
    if not present:
        return []
    ground = np.array([p.position(frame, scene.fps) for p in present])
    feet = np.stack([ground[:, 0], np.zeros(len(present)), ground[:, 1]], axis=1)
    heads = feet + np.array([[0.0, 1.0, 0.0]]) * np.array([[p.height_m] for p in present])
    foot_px, depth = camera.project(feet)
    head_px, _ = camera.project(heads)
    candidates = []
    for k, person in enumerate(present):
        if not depth[k] > 0.5 or not np.isfinite(foot_px[k]).all():
            continue
        height = foot_px[k, 1] - head_px[k, 1]
        if height < MIN_HEIGHT_PX:
            continue
        width = 0.41 * height
        x1 = round(foot_px[k, 0] - width / 2)
        y1 = round(head_px[k, 1])
        w, h = max(1, round(width)), max(1, round(height))
        inside = min(x1 + w, camera.width) - max(x1, 0)
        if inside < min_visible_width or y1 + h <= 0 or y1 >= camera.height:
            continue
        candidates.append((float(depth[k]), person, x1, y1, w, h))
    candidates.sort(key=lambda c: (c[0], c[1].track_id))
    grid_h, grid_w = -(-camera.height // GRID), -(-camera.width // GRID)
    occupied = np.zeros((grid_h, grid_w), dtype=bool)
    rows = []
    for depth_m, person, x1, y1, w, h in candidates:
        gx1, gy1 = math.floor(x1 / GRID), math.floor(y1 / GRID)
        gx2, gy2 = math.ceil((x1 + w) / GRID), math.ceil((y1 + h) / GRID)
        total = max((gx2 - gx1) * (gy2 - gy1), 1)
        cx1, cy1, cx2, cy2 = max(gx1, 0), max(gy1, 0), min(gx2, grid_w), min(gy2, grid_h)
        region = occupied[cy1:cy2, cx1:cx2]
        free = ~region
        visible_cells = int(free.sum())
        visibility = round(visible_cells / total, 2)
        vis_box = None
        if visible_cells:
            ys, xs = np.nonzero(free)
            vis_box = (
                max((cx1 + int(xs.min())) * GRID, 0, x1),
                max((cy1 + int(ys.min())) * GRID, 0, y1),
                min((cx1 + int(xs.max()) + 1) * GRID, camera.width, x1 + w),
                min((cy1 + int(ys.max()) + 1) * GRID, camera.height, y1 + h),
            )
        occupied[cy1:cy2, cx1:cx2] = True
        head_h = max(1, round(h * 0.13))
        head_w = max(1, round(w * 0.45))
        head_x1 = x1 + (w - head_w) // 2
        rows.append(
            {
                "track_id": person.track_id,
                "x": x1,
                "y": y1,
                "w": w,
                "h": h,
                "visibility": visibility,
                "static": person.static,
                "depth": round(depth_m, 3),
                "vis_box": vis_box,
                "head_box": (head_x1, y1, head_x1 + head_w, y1 + head_h),
            }
        )
    return rows


def generate_world(config: WorldConfig) -> World:
    """Simulate every scene; the ground truth rows are sorted by scene, view, frame and track id."""
    rng = np.random.default_rng(config.seed)
    scenes: list[Scene] = []
    records: dict[str, list] = {key: [] for key in BOX_COLUMNS}
    for s in range(config.scenes):
        scene = Scene(
            f"SYN-{s + 1:02d}", _cameras(config, rng), _people(config, rng), config.frames, config.fps
        )
        scenes.append(scene)
        for v, camera in enumerate(scene.cameras, start=1):
            for frame in range(1, config.frames + 1):
                for row in sorted(
                    _frame_boxes(scene, camera, frame, config.min_visible_width), key=lambda r: r["track_id"]
                ):
                    vis = row["vis_box"] or (None, None, None, None)
                    values = {
                        "scene": scene.name,
                        "view": v,
                        "frame": frame,
                        **{
                            k: row[k]
                            for k in ("track_id", "x", "y", "w", "h", "visibility", "static", "depth")
                        },
                        "vis_x1": vis[0],
                        "vis_y1": vis[1],
                        "vis_x2": vis[2],
                        "vis_y2": vis[3],
                        "head_x1": row["head_box"][0],
                        "head_y1": row["head_box"][1],
                        "head_x2": row["head_box"][2],
                        "head_y2": row["head_box"][3],
                    }
                    for key in BOX_COLUMNS:
                        records[key].append(values[key])
    boxes = pl.DataFrame(records, schema=BOX_COLUMNS)
    return World(config, scenes, boxes)


BOX_COLUMNS: dict[str, pl.DataType] = {
    "scene": pl.String(),
    "view": pl.Int32(),
    "frame": pl.Int32(),
    "track_id": pl.Int64(),
    "x": pl.Int32(),
    "y": pl.Int32(),
    "w": pl.Int32(),
    "h": pl.Int32(),
    "visibility": pl.Float64(),
    "static": pl.Boolean(),
    "depth": pl.Float64(),
    "vis_x1": pl.Int32(),
    "vis_y1": pl.Int32(),
    "vis_x2": pl.Int32(),
    "vis_y2": pl.Int32(),
    "head_x1": pl.Int32(),
    "head_y1": pl.Int32(),
    "head_x2": pl.Int32(),
    "head_y2": pl.Int32(),
}
