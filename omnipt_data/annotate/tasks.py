"""A predictions store as Label Studio tasks, one kind at a time.

Every task carries, in ``data``:

- ``omnipt_key``: a stable key (``<kind>:<frame_uid>``, ``<kind>:<sequence_uid>``,
  ``expressions:<expression_uid>|<sequence_uid>``) so pushing again finds the task instead of adding one;
- ``omnipt``: what the pull needs to write a store without the predictions store at hand (the frames and
  sequence rows, the image root, the model, and per region the track id, category and class the model
  gave), plus a hash of the task's content (a new prediction for a task not yet reviewed replaces it);
- what the label config shows: ``image`` or ``video`` (a local-files URL) and ``fps``, or ``sentence``.

The model's boxes, captions, attributes, summaries, referents and interactions form the task's single
prediction (``model_version`` = the model's name). Region ids are stable: ``t<track>`` for a track (every
video kind, and a tracked box in an image), ``b<n>`` for an untracked box.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.annotate.labelconfig import BOX, CAPTION, SENTENCE, SUMMARY, ReviewConfig
from omnipt_data.annotate.labelstudio import local_file_url
from omnipt_data.annotate.regions import Corners, rectangle_result, video_result
from omnipt_data.errors import OmniptError
from omnipt_data.schema import SOURCE_PREDICTION_PREFIX
from omnipt_data.store import Store

KEY_FIELD = "omnipt_key"
META_FIELD = "omnipt"
DEFAULT_FPS = 10.0


@dataclass
class VideoJob:
    """Frames to encode into ``path`` (in order) when the file is not there yet."""

    path: Path
    images: list[Path]
    width: int
    height: int
    fps: float


@dataclass
class ReviewTask:
    key: str
    data: dict[str, Any]
    result: list[dict[str, Any]]
    score: float | None = None
    video: VideoJob | None = None

    @property
    def content_hash(self) -> str:
        return self.data[META_FIELD]["hash"]


@dataclass
class BuildNotes:
    """Things of the predictions store that could not be shown, counted for the push report."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, what: str, n: int = 1) -> None:
        if n:
            self.counts[what] += n


def model_source(store: Store, model: str | None) -> str:
    """The ``model:NAME`` source to review; with several models in the store, ``model`` must pick one."""
    sources = set(
        store.scan("boxes").select(pl.col("source").unique()).collect()["source"].drop_nulls().to_list()
        + store.scan("semantics").select(pl.col("source").unique()).collect()["source"].drop_nulls().to_list()
    )
    models = sorted(s for s in sources if s.startswith(SOURCE_PREDICTION_PREFIX))
    if model:
        wanted = model if model.startswith(SOURCE_PREDICTION_PREFIX) else SOURCE_PREDICTION_PREFIX + model
        if wanted not in models:
            raise OmniptError(
                f"{store.path}: no predictions of {wanted!r} (found: {', '.join(models) or 'none'})"
            )
        return wanted
    if not models:
        raise OmniptError(
            f"{store.path}: not a predictions store (no boxes or semantics with source 'model:NAME')"
        )
    if len(models) > 1:
        raise OmniptError(
            f"{store.path}: predictions of several models ({', '.join(models)}); pick one with --model"
        )
    return models[0]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def _hash(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _most_common(values: list[Any]) -> Any:
    counted = Counter(v for v in values if v is not None)
    if not counted:
        return None
    return min(counted.items(), key=lambda item: (-item[1], str(item[0])))[0]


class TaskBuilder:
    """Reads a predictions store once and yields the tasks of one review kind."""

    def __init__(
        self,
        store: Store,
        kind: str,
        config: ReviewConfig,
        *,
        model: str,
        document_root: Path,
        media_dir: Path | None,
        config_origin: str,
    ):
        self.store = store
        self.kind = kind
        self.config = config
        self.model = model
        self.document_root = Path(document_root).resolve()
        self.media_dir = Path(media_dir).resolve() if media_dir else None
        self.config_origin = config_origin
        self.notes = BuildNotes()
        manifest = store.manifest
        self.image_roots: dict[str, str] = manifest.get("image_roots", {})
        self.provenance = manifest.get("prediction", {})
        self.sequences = {row["sequence_uid"]: row for row in store.read("sequences").to_dicts()}
        self.frames = store.read("frames").sort("sequence_uid", "frame_index")
        boxes = store.scan("boxes").filter(pl.col("source") == model).collect()
        self.boxes = boxes.join(
            self.frames.select("frame_uid", "sequence_uid", "frame_index"), on="frame_uid"
        )
        self.semantics = store.scan("semantics").filter(pl.col("source") == model).collect()
        # New tracks drawn by a reviewer get ids above the model's largest in the scene (views share ids).
        self.max_track_by_scene: dict[str, int] = {}
        for uid, track in self.boxes.select("sequence_uid", "track_id").drop_nulls().iter_rows():
            scene = self._scene_of(uid)
            self.max_track_by_scene[scene] = max(self.max_track_by_scene.get(scene, 0), int(track))
        self._check_labels()

    # -- lookups -------------------------------------------------------------------------------------
    def _check_labels(self) -> None:
        categories = sorted(set(self.boxes["category"].drop_nulls().to_list()))
        missing = [c for c in categories if self.config.missing_label(c)]
        if missing:
            raise OmniptError(
                f"{self.config_origin}: no <Label> for the model's categories {missing}; add them to the "
                "label config (or relabel the boxes)"
            )

    def image_path(self, frame: dict[str, Any]) -> Path:
        root = self.image_roots.get(frame["dataset"])
        relative = frame["image_path"]
        if relative is None:
            raise OmniptError(f"{self.store.path}: frame {frame['frame_uid']} has no image path")
        path = Path(root) / relative if root else Path(relative)
        if not path.is_absolute():
            path = (self.store.path / path).resolve()
        return path

    def _semantic_texts(self, kind: str) -> dict[tuple[str, int | None], dict[str, Any]]:
        rows = self.semantics.filter(pl.col("kind") == kind).sort("semantic_uid").to_dicts()
        return {(row["sequence_uid"], row["track_id"]): row for row in rows}

    def _lookup(self, table: dict[tuple[str, Any], Any], sequence_uid: str, track_id: Any) -> Any:
        """A sequence's row, or its scene's (views share identities and their descriptions)."""
        row = table.get((sequence_uid, track_id))
        view = (self.sequences.get(sequence_uid) or {}).get("view")
        if row is None and view and sequence_uid.endswith("/" + view):
            row = table.get((sequence_uid[: -len(view) - 1], track_id))
        return row

    def _attributes(self) -> dict[tuple[str, int], dict[str, str]]:
        found: dict[tuple[str, int], dict[str, str]] = {}
        rows = self.semantics.filter(pl.col("kind") == "track_attribute").sort("semantic_uid").to_dicts()
        for row in rows:
            name, value = row["name"], row["text"]
            if name not in self.config.attributes:
                self.notes.add(f"attributes without a per-region <Choices name={name!r}> (not shown)")
                continue
            if value not in self.config.attributes[name]:
                self.notes.add(f"attribute values not among the <Choice>s of {name!r} (not shown)")
                continue
            found.setdefault((row["sequence_uid"], row["track_id"]), {})[name] = value
        return found

    def _meta(
        self, frames: list[dict[str, Any]], sequence_uid: str, regions: dict[str, Any]
    ) -> dict[str, Any]:
        dataset = frames[0]["dataset"] if frames else None
        return {
            "kind": self.kind,
            "model": self.model,
            "prediction": self.provenance,
            "store": str(self.store.path.resolve()),
            "dataset": dataset,
            "image_root": self.image_roots.get(dataset) if dataset else None,
            "sequence": self.sequences.get(sequence_uid),
            "sequence_uid": sequence_uid,
            "scene": self._scene_of(sequence_uid),
            "frames": frames,
            "regions": regions,
            "max_track_id": self.max_track_by_scene.get(self._scene_of(sequence_uid), 0),
        }

    def _scene_of(self, sequence_uid: str) -> str:
        view = (self.sequences.get(sequence_uid) or {}).get("view")
        return sequence_uid[: -len(view) - 1] if view and sequence_uid.endswith("/" + view) else sequence_uid

    def _finish(
        self, key: str, data: dict[str, Any], result: list[dict[str, Any]], **extra: Any
    ) -> ReviewTask:
        data[KEY_FIELD] = key
        # The store's location is provenance, not content: a moved store pushes as the same predictions.
        content = {**data, META_FIELD: {k: v for k, v in data[META_FIELD].items() if k != "store"}}
        data[META_FIELD]["hash"] = _hash({"data": content, "result": result})
        return ReviewTask(key=key, data=data, result=result, **extra)

    def _region_fields(
        self, region_id: str, caption: str | None, attributes: dict[str, str]
    ) -> list[dict[str, Any]]:
        to_name = self.config.object_name
        results = []
        if caption and self.config.caption:
            results.append(
                {
                    "id": region_id,
                    "from_name": CAPTION,
                    "to_name": to_name,
                    "type": "textarea",
                    "value": {"text": [caption]},
                }
            )
        elif caption:
            self.notes.add("captions (the label config has no per-region caption)")
        for name, value in sorted(attributes.items()):
            results.append(
                {
                    "id": region_id,
                    "from_name": name,
                    "to_name": to_name,
                    "type": "choices",
                    "value": {"choices": [value]},
                }
            )
        return results

    def _text_result(self, control: str, text: str) -> dict[str, Any]:
        return {
            "id": control,
            "from_name": control,
            "to_name": self.config.object_name,
            "type": "textarea",
            "value": {"text": [text]},
        }

    # -- kinds ---------------------------------------------------------------------------------------
    def tasks(self) -> Iterator[ReviewTask]:
        if self.kind == "boxes":
            yield from self._box_tasks()
        elif self.kind == "expressions":
            yield from self._expression_tasks()
        else:
            yield from self._video_tasks()

    def count(self) -> int:
        if self.kind == "boxes":
            return self.frames.height
        if self.kind == "expressions":
            return sum(
                len(self._expression_sequences(row)) for row in self.store.read("expressions").to_dicts()
            )
        return self.frames["sequence_uid"].n_unique()

    def _box_tasks(self) -> Iterator[ReviewTask]:
        captions = self._semantic_texts("track_caption")
        attributes = self._attributes()
        by_frame = {key[0]: group for key, group in self.boxes.sort("box_uid").group_by(["frame_uid"])}
        for frame in self.frames.to_dicts():
            image = self.image_path(frame)
            width, height = frame["width"], frame["height"]
            if not width or not height:
                raise OmniptError(f"{self.store.path}: frame {frame['frame_uid']} has no image size")
            result: list[dict[str, Any]] = []
            regions: dict[str, Any] = {}
            boxes = by_frame.get(frame["frame_uid"])
            rows = boxes.to_dicts() if boxes is not None else []
            for n, row in enumerate(rows):
                track = row["track_id"]
                region_id = f"t{track}" if track is not None and f"t{track}" not in regions else f"b{n}"
                caption_row = (
                    self._lookup(captions, frame["sequence_uid"], track) if track is not None else None
                )
                regions[region_id] = {
                    "track_id": track,
                    "category": row["category"],
                    "class_id": row["class_id"],
                    "box_uid": row["box_uid"],
                    "caption_name": caption_row["name"] if caption_row else None,
                }
                result.append(
                    rectangle_result(
                        region_id,
                        (row["x1"], row["y1"], row["x2"], row["y2"]),
                        row["category"],
                        control=BOX,
                        to_name=self.config.object_name,
                        width=width,
                        height=height,
                    )
                )
                if track is not None:
                    attrs = self._lookup(attributes, frame["sequence_uid"], track) or {}
                    result.extend(self._region_fields(region_id, caption_row and caption_row["text"], attrs))
            confidences = [r["confidence"] for r in rows if r["confidence"] is not None]
            data = {
                "image": local_file_url(image, self.document_root),
                META_FIELD: self._meta([frame], frame["sequence_uid"], regions),
            }
            yield self._finish(
                f"boxes:{frame['frame_uid']}",
                data,
                result,
                score=sum(confidences) / len(confidences) if confidences else None,
            )

    def _sequence_frames(self, sequence_uid: str) -> list[dict[str, Any]]:
        return self.frames.filter(pl.col("sequence_uid") == sequence_uid).to_dicts()

    def _video(
        self, sequence_uid: str, frames: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], VideoJob, float]:
        if self.media_dir is None:
            raise OmniptError("video review kinds need a media folder (--media-dir) below the document root")
        images = [self.image_path(f) for f in frames]
        width, height = frames[0]["width"], frames[0]["height"]
        if not width or not height:
            raise OmniptError(f"{self.store.path}: sequence {sequence_uid} has no image size")
        fps = (self.sequences.get(sequence_uid) or {}).get("fps") or DEFAULT_FPS
        digest = _hash([sequence_uid, [str(p) for p in images], fps])[:12]
        path = self.media_dir / f"{_slug(sequence_uid)}-{digest}.webm"
        data = {"video": local_file_url(path, self.document_root), "fps": fps}
        return data, VideoJob(path, images, width, height, fps), fps

    def _track_regions(
        self,
        boxes: pl.DataFrame,
        positions: dict[str, int],
        *,
        width: int,
        height: int,
        fps: float,
        frames_count: int,
    ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        """Video regions of the model's tracks in ``boxes``: result per track and the per-track info."""
        results: dict[int, dict[str, Any]] = {}
        regions: dict[str, Any] = {}
        for (track,), group in sorted(boxes.filter(pl.col("track_id").is_not_null()).group_by(["track_id"])):
            per_frame: dict[int, Corners] = {}
            for row in group.sort("box_uid").to_dicts():
                position = positions[row["frame_uid"]]
                if position in per_frame:
                    self.notes.add("duplicate boxes of one track in one frame (first kept)")
                    continue
                per_frame[position] = (row["x1"], row["y1"], row["x2"], row["y2"])
            category = _most_common(group["category"].to_list())
            region_id = f"t{track}"
            regions[region_id] = {
                "track_id": track,
                "category": category,
                "class_id": _most_common(group.filter(pl.col("category") == category)["class_id"].to_list()),
            }
            results[track] = video_result(
                region_id,
                per_frame,
                category,
                control=BOX,
                to_name=self.config.object_name,
                width=width,
                height=height,
                fps=fps,
                frames_count=frames_count,
            )
        untracked = boxes.filter(pl.col("track_id").is_null()).height
        self.notes.add("boxes without a track id (not shown in a video kind)", untracked)
        return regions, results

    def _video_tasks(self) -> Iterator[ReviewTask]:
        captions = self._semantic_texts("track_caption")
        summaries = self._semantic_texts("summary")
        attributes = self._attributes()
        interactions = self.semantics.filter(pl.col("kind") == "interaction").sort("semantic_uid").to_dicts()
        for sequence_uid in self.frames["sequence_uid"].unique(maintain_order=True).to_list():
            frames = self._sequence_frames(sequence_uid)
            data, video, fps = self._video(sequence_uid, frames)
            positions = {f["frame_uid"]: i + 1 for i, f in enumerate(frames)}
            boxes = self.boxes.filter(pl.col("sequence_uid") == sequence_uid)
            regions, tracks = self._track_regions(
                boxes, positions, width=video.width, height=video.height, fps=fps, frames_count=len(frames)
            )
            result = [tracks[t] for t in sorted(tracks)]
            if self.kind == "tracks":
                for track in sorted(tracks):
                    caption_row = self._lookup(captions, sequence_uid, track)
                    regions[f"t{track}"]["caption_name"] = caption_row["name"] if caption_row else None
                    attrs = self._lookup(attributes, sequence_uid, track) or {}
                    result.extend(
                        self._region_fields(f"t{track}", caption_row and caption_row["text"], attrs)
                    )
                summary = self._lookup(summaries, sequence_uid, None)
                if summary and summary["text"] and self.config.summary:
                    result.append(self._text_result(SUMMARY, summary["text"]))
            else:
                result.extend(self._relations(sequence_uid, interactions, tracks))
            data[META_FIELD] = self._meta(frames, sequence_uid, regions)
            yield self._finish(f"{self.kind}:{sequence_uid}", data, result, video=video)

    def _relations(
        self, sequence_uid: str, interactions: list[dict[str, Any]], tracks: dict[int, Any]
    ) -> list[dict[str, Any]]:
        scene = self._scene_of(sequence_uid)
        mine = [r for r in interactions if r["sequence_uid"] in (sequence_uid, scene)]
        missing = sorted({r["name"] for r in mine} - set(self.config.relations))
        if missing:
            raise OmniptError(
                f"{self.config_origin}: no <Relation> for the model's interactions {missing}; add them to "
                "the label config"
            )
        labels: dict[tuple[int, int], list[str]] = {}
        for row in mine:
            pair = (row["track_id"], row["other_track_id"])
            if pair[0] not in tracks or pair[1] not in tracks:
                self.notes.add("interactions of tracks without boxes in the view (not shown)")
                continue
            labels.setdefault(pair, []).append(row["name"])
        return [
            {
                "type": "relation",
                "from_id": f"t{a}",
                "to_id": f"t{b}",
                "direction": "right",
                "labels": sorted(set(names)),
            }
            for (a, b), names in sorted(labels.items())
        ]

    def _expression_sequences(self, expression: dict[str, Any]) -> list[str]:
        """The sequences (camera views) an expression is asked about."""
        matches = [
            uid
            for uid, row in self.sequences.items()
            if row["dataset"] == expression["dataset"]
            and row["split"] == expression["split"]
            and row["sequence"] == expression["sequence"]
            and (not expression["views"] or row["view"] in expression["views"])
        ]
        return sorted(matches)

    def _expression_tasks(self) -> Iterator[ReviewTask]:
        referents = self.store.read("referents")
        for expression in self.store.read("expressions").sort("expression_uid").to_dicts():
            referred = referents.filter(pl.col("expression_uid") == expression["expression_uid"])
            for sequence_uid in self._expression_sequences(expression):
                frames = self._sequence_frames(sequence_uid)
                if not frames:
                    continue
                data, video, fps = self._video(sequence_uid, frames)
                positions = {f["frame_uid"]: i + 1 for i, f in enumerate(frames)}
                # The model's referred boxes: its boxes at the (frame, track) pairs it referred to.
                boxes = self.boxes.filter(pl.col("sequence_uid") == sequence_uid).join(
                    referred.select("frame_uid", "track_id"), on=["frame_uid", "track_id"], how="semi"
                )
                regions, tracks = self._track_regions(
                    boxes,
                    positions,
                    width=video.width,
                    height=video.height,
                    fps=fps,
                    frames_count=len(frames),
                )
                result = [tracks[t] for t in sorted(tracks)]
                if expression["sentence"]:
                    result.append(self._text_result(SENTENCE, expression["sentence"]))
                data["sentence"] = expression["sentence"] or ""
                data[META_FIELD] = self._meta(frames, sequence_uid, regions)
                data[META_FIELD]["expression"] = expression
                key = f"expressions:{expression['expression_uid']}|{sequence_uid}"
                yield self._finish(key, data, result, video=video)
