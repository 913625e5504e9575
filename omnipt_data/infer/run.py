"""``track`` and ``prelabel``: the model over sequences, results as MOTChallenge files or a store.

Results layouts (what ``omnipt-data eval`` reads back):

- MOT: ``OUT/<sequence>.txt`` (one file per view, ``<sequence>_<view>.txt``), rows
  ``frame,id,x,y,w,h,1,-1,-1,-1``;
- referring: ``OUT/<sequence>+<sentence-with-hyphens>.txt`` (the Refer-KITTI evaluation naming);
- cross-view: ``OUT/<scene>_<sentence>/<view>.txt`` with corners ``frame,id,x1,y1,x2,y2`` (the CRTrack
  evaluation layout, as its authors release results);
- semantic: ``OUT/<sequence>.captions.json`` (``{track id: caption}``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.answers import Answer, Box, parse_scalar
from omnipt_data.atomic import atomic_directory
from omnipt_data.build.draft import Image
from omnipt_data.errors import OmniptError
from omnipt_data.infer.inputs import LoadedInput, load_input
from omnipt_data.infer.tracker import ClipTracker, PromptMaker, SequenceInput, SequenceResult, _template
from omnipt_data.interactions import synset_of
from omnipt_data.rewards import iou_matrix, match_boxes
from omnipt_data.schema import SOURCE_PREDICTION_PREFIX, view_sequence_name
from omnipt_data.store import write_json, write_store

ATTRIBUTE_NAMES = ("upper_color", "lower_color", "bag")
PRELABEL_TASKS = ("tracks", "captions", "attributes", "interactions", "expressions")


@dataclass
class ModelRunner:
    """A loaded model with its generation settings: ``runner(prompts) -> texts`` (batched)."""

    model: Any
    processor: Any
    path: Path
    batch_size: int = 8
    max_images_per_batch: int | None = None
    max_new_tokens: int = 256
    device: str | None = None
    calls: int = 0
    prompts: int = 0

    @classmethod
    def load(
        cls, path: Path, *, device: str | None = None, dtype: str | None = None, **settings: Any
    ) -> ModelRunner:
        from omnipt_data.model import load_model

        if not Path(path).is_dir():
            raise OmniptError(f"{path}: no model checkpoint folder (models load from a local path only)")
        model, processor = load_model(path, device=device, dtype=dtype)
        return cls(model, processor, Path(path), device=device, **settings)

    def __call__(self, prompts: list[list[dict[str, Any]]]) -> list[str]:
        from omnipt_data.model import generate_batch

        self.calls += 1
        self.prompts += len(prompts)
        return generate_batch(
            self.model,
            self.processor,
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            max_images_per_batch=self.max_images_per_batch,
        )


def slug(sentence: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", sentence).strip("-")


def _per_view(sequences: list[SequenceInput]) -> list[SequenceInput]:
    """MOT tracking runs on each view on its own."""
    out = []
    for s in sequences:
        for view, images in s.views.items():
            out.append(SequenceInput(view_sequence_name(s.name, view), {"": images}))
    return out


def _mot_lines(result: SequenceResult, *, corners: bool = False, view: str | None = None) -> str:
    rows = sorted((t.frame, t.track_id, t.box) for t in result.tracks if view is None or t.view == view)
    lines = []
    for frame, tid, (x1, y1, x2, y2) in rows:
        if corners:
            lines.append(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2:.2f},{y2:.2f}\n")
        else:
            lines.append(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1\n")
    return "".join(lines)


def run_track(
    runner: Any,
    source: Path,
    out: Path,
    *,
    expression: str | None = None,
    views: list[str] | None = None,
    captions: bool = False,
    length: int = 8,
    prompts: PromptMaker | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Track every sequence of ``source``; returns a summary (sequences, boxes, unparsed answers)."""
    loaded = (
        load_input(source, views=views) if (Path(source) / "manifest.json").is_file() else load_input(source)
    )
    tracker = ClipTracker(runner, prompts or PromptMaker(), length=length)
    started = time.perf_counter()
    summary: dict[str, Any] = {"sequences": 0, "boxes": 0, "unparsed": 0}
    jobs = _referring_jobs(loaded, expression)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        if not jobs:
            results = tracker.track(_per_view(loaded.sequences))
            for result in results:
                (tmp / f"{result.name}.txt").write_text(_mot_lines(result))
        else:
            results = []
            for sentence, sequences in jobs:
                found = tracker.track_referring(sequences, sentence)
                for seq, result in zip(sequences, found, strict=True):
                    if len(seq.views) > 1:
                        folder = tmp / f"{seq.name}_{sentence}"
                        folder.mkdir(parents=True, exist_ok=True)
                        for view in seq.views:
                            (folder / f"{view}.txt").write_text(_mot_lines(result, corners=True, view=view))
                    else:
                        (tmp / f"{seq.name}+{slug(sentence)}.txt").write_text(_mot_lines(result))
                results += found
        if captions:
            for result, text in describe_tracks(runner, tracker.prompts, loaded, results):
                result.captions = text
                (tmp / f"{result.name}.captions.json").write_bytes(
                    orjson.dumps({str(k): v for k, v in text.items()})
                )
        summary = {
            "sequences": len(results),
            "boxes": sum(len(r.tracks) for r in results),
            "unparsed": sum(r.unparsed for r in results),
            "generate_calls": getattr(runner, "calls", None),
            "seconds": round(time.perf_counter() - started, 2),
        }
        write_json(tmp / "track.json", summary)
    return summary


def _store_expressions(loaded: LoadedInput) -> Iterator[tuple[str, str]]:
    """(scene name, sentence) of the store's expressions, for the scenes being tracked."""
    from omnipt_data.store import Store

    if loaded.store_path is None:
        return
    expressions = Store.open(loaded.store_path).read("expressions")
    for row in expressions.sort("expression_uid").iter_rows(named=True):
        if row["sequence"] in loaded.scenes:
            yield row["sequence"], row["sentence"]


def _referring_jobs(loaded: LoadedInput, expression: str | None) -> list[tuple[str, list[SequenceInput]]]:
    """(sentence, sequences) to track by reference: the given sentence over every sequence, else the
    store's own expressions; empty for plain MOT."""
    if expression is not None:
        return [(expression, loaded.sequences)]
    by_name = {s.name: s for s in loaded.sequences}
    return [(sentence, [by_name[scene]]) for scene, sentence in _store_expressions(loaded)]


def _crop(image: Image, box: tuple[float, float, float, float]) -> Any:
    from PIL import Image as PILImage

    with PILImage.open(image.path) as frame:
        x1, y1, x2, y2 = (round(v) for v in box)
        x1, y1 = max(x1, 0), max(y1, 0)
        x2, y2 = min(max(x2, x1 + 1), image.size[0]), min(max(y2, y1 + 1), image.size[1])
        return frame.convert("RGB").crop((x1, y1, x2, y2))


def _track_samples(
    loaded: LoadedInput, results: list[SequenceResult]
) -> Iterator[tuple[SequenceResult, int, Any, Image]]:
    """(result, track id, the track's middle observation, its frame) for every predicted track."""
    frames = {seq.name: seq.views[""] for seq in _per_view(loaded.sequences)}
    for result in results:
        by_track: dict[int, list] = {}
        for t in result.tracks:
            by_track.setdefault(t.track_id, []).append(t)
        for tid, seen in sorted(by_track.items()):
            pick = sorted(seen, key=lambda t: t.frame)[len(seen) // 2]
            images = frames.get(result.name, [])
            if pick.frame <= len(images):
                yield result, tid, pick, images[pick.frame - 1]


def describe_tracks(
    runner: Any, prompts: PromptMaker, loaded: LoadedInput, results: list[SequenceResult]
) -> Iterator[tuple[SequenceResult, dict[int, str]]]:
    """One caption per track (``sft/describe_track``: the frame in the middle of the track, its box)."""
    template = _template("sft", "describe_track")
    jobs = []
    for result, tid, pick, image in _track_samples(loaded, results):
        context = {"target": Answer.single_image([Box(*pick.box)])}
        messages, _ = prompts.prompt(template, f"{result.name}#track{tid}", [image], context)
        jobs.append((result, tid, messages))
    texts = runner([j[2] for j in jobs]) if jobs else []
    captions: dict[str, dict[int, str]] = {}
    for (result, tid, _), text in zip(jobs, texts, strict=True):
        captions.setdefault(result.name, {})[tid] = " ".join(text.split())
    for result in results:
        yield result, captions.get(result.name, {})


def ask_attributes(
    runner: Any, prompts: PromptMaker, loaded: LoadedInput, results: list[SequenceResult]
) -> list[tuple[SequenceResult, int, str, str | None, str]]:
    """``mid/attribute`` on each track's crop: (result, track id, attribute, value or None, raw text)."""
    template = _template("mid", "attribute")
    jobs = []
    for result, tid, pick, image in _track_samples(loaded, results):
        crop = _crop(image, pick.box)
        for name in ATTRIBUTE_NAMES:
            context = {"attribute": name.replace("_", " ")}
            messages, _ = prompts.prompt(
                template, f"{result.name}#track{tid}", [Image(image.path, crop.size)], context
            )
            for message in messages:  # the crop itself, in memory, in place of the frame's path
                for part in message["content"]:
                    if part["type"] == "image":
                        part["image"] = crop
            jobs.append((result, tid, name, messages))
    texts = runner([j[3] for j in jobs]) if jobs else []
    return [
        (r, tid, name, parse_scalar(text), text) for (r, tid, name, _), text in zip(jobs, texts, strict=True)
    ]


def find_interactions(
    runner: Any, prompts: PromptMaker, loaded: LoadedInput, results: list[SequenceResult], length: int
) -> list[tuple[SequenceResult, int, int, str]]:
    """``sft/smot`` on consecutive clips; the model's ids are mapped onto the predicted tracks through
    the clip's first frame (Hungarian on IoU >= 0.5): (result, track, other track, label), the label
    said in words read back as the store's synset."""
    template = _template("sft", "smot")
    frames = {seq.name: seq.views[""] for seq in _per_view(loaded.sequences)}
    jobs = []
    for result in results:
        images = frames.get(result.name, [])
        for start in range(0, max(len(images) - 1, 0), length):
            clip = [Image(i.path, i.size, {"n": k}) for k, i in enumerate(images[start : start + length], 1)]
            messages, size = prompts.prompt(template, f"{result.name}@{start}", clip, {"n_frames": len(clip)})
            jobs.append((result, start, clip, size, messages))
    texts = runner([j[4] for j in jobs]) if jobs else []
    found = []
    for (result, start, clip, size, _), text in zip(jobs, texts, strict=True):
        answer, _ = prompts.read(text, size, clip[0].size)
        first = next((boxes for (_, index), boxes in answer.frame_items() if index == 1), [])
        ours = [Box(*t.box, t.track_id) for t in result.tracks if t.frame == start + 1]
        mapping = {
            first[i].track_id: ours[j].track_id
            for i, j, _ in match_boxes(iou_matrix(first, ours), 0.5)
            if first[i].track_id is not None
        }
        for (a, b), labels in answer.interactions.items():
            if a in mapping and b in mapping:
                found += [(result, mapping[a], mapping[b], synset_of(label)) for label in labels]
    return found


@dataclass
class Labels:
    """The rows a pre-labelling run adds to a predictions store, and how many answers did not parse."""

    boxes: list[dict[str, Any]] = field(default_factory=list)
    semantics: list[dict[str, Any]] = field(default_factory=list)
    expressions: list[dict[str, Any]] = field(default_factory=list)
    referents: list[dict[str, Any]] = field(default_factory=list)
    unparsed: int = 0

    def extend(self, other: Labels) -> None:
        for name in ("boxes", "semantics", "expressions", "referents"):
            getattr(self, name).extend(getattr(other, name))
        self.unparsed += other.unparsed


def label_sequences(
    runner: Any, loaded: LoadedInput, tasks: tuple[str, ...], origin: str, length: int, prompts: PromptMaker
) -> Labels:
    """Tracks always run (every other task describes them); ``captions`` add ``track_caption`` semantics,
    ``attributes`` ``track_attribute`` ones, ``interactions`` pair relations, ``expressions`` one
    referring expression per track (its caption) with the frames it refers to the track in. Answers
    that do not parse are counted and kept as ``raw_answer`` semantics for audit."""
    labels = Labels()
    results = ClipTracker(runner, prompts, length=length).track(_per_view(loaded.sequences))
    labels.unparsed = sum(r.unparsed for r in results)
    uid_of = {
        view_sequence_name(scene, view): uid
        for scene, views in loaded.scenes.items()
        for view, uid in views.items()
    }
    position = {}  # (sequence uid, 1-based position among its frames) -> frame uid
    for (uid,), group in loaded.frames.sort("frame_index").group_by("sequence_uid", maintain_order=True):
        for k, fuid in enumerate(group["frame_uid"].to_list(), start=1):
            position[(uid, k)] = fuid

    def semantic(uid: str, kind: str, key: str, **values: Any) -> None:
        labels.semantics.append(
            {
                "semantic_uid": f"{uid}/{kind}/{key}",
                "sequence_uid": uid,
                "kind": kind,
                "source": origin,
                **values,
            }
        )

    for result in results:
        uid = uid_of[result.name]
        for n, t in enumerate(sorted(result.tracks, key=lambda t: (t.frame, t.track_id))):
            fuid = position[(uid, t.frame)]
            labels.boxes.append(
                {
                    "box_uid": f"{fuid}/{origin}/{n}",
                    "frame_uid": fuid,
                    "track_id": t.track_id,
                    "category": "pedestrian",
                    "x1": t.box[0],
                    "y1": t.box[1],
                    "x2": t.box[2],
                    "y2": t.box[3],
                    "ignore": False,
                    "source": origin,
                }
            )
        for k, text in enumerate(result.raw_answers):
            semantic(uid, "raw_answer", str(k), text=text)
    if "captions" in tasks or "expressions" in tasks:
        for result, captions in describe_tracks(runner, prompts, loaded, results):
            uid = uid_of[result.name]
            for tid, text in captions.items():
                if "captions" in tasks:
                    semantic(uid, "track_caption", str(tid), track_id=tid, text=text)
                if "expressions" in tasks and text:
                    expression_uid = f"{uid}/{origin}/expr{tid}"
                    labels.expressions.append(
                        {
                            "expression_uid": expression_uid,
                            "dataset": loaded.frames["dataset"][0],
                            "split": "predicted",
                            "sequence": result.name,
                            "sentence": text,
                        }
                    )
                    labels.referents += [
                        {
                            "expression_uid": expression_uid,
                            "frame_uid": position[(uid, t.frame)],
                            "track_id": tid,
                        }
                        for t in result.tracks
                        if t.track_id == tid
                    ]
    if "attributes" in tasks:
        for result, tid, attribute, value, text in ask_attributes(runner, prompts, loaded, results):
            uid = uid_of[result.name]
            if value is None:
                labels.unparsed += 1
                semantic(uid, "raw_answer", f"attribute/{tid}/{attribute}", track_id=tid, text=text)
            else:
                semantic(
                    uid, "track_attribute", f"{tid}/{attribute}", track_id=tid, name=attribute, text=value
                )
    if "interactions" in tasks:
        for k, (result, a, b, label) in enumerate(
            find_interactions(runner, prompts, loaded, results, length)
        ):
            semantic(
                uid_of[result.name], "interaction", f"{a}-{b}/{k}", track_id=a, other_track_id=b, name=label
            )
    return labels


class _RayLabeler:
    """A Ray Data actor: loads the model once, then labels the scenes of each batch it is given."""

    def __init__(
        self,
        model: str,
        settings: dict[str, Any],
        source: str,
        tasks: tuple[str, ...],
        origin: str,
        length: int,
        prompt_options: dict[str, Any],
    ):
        self.runner = ModelRunner.load(Path(model), **settings)
        self.source, self.tasks, self.origin, self.length = source, tasks, origin, length
        self.prompts = PromptMaker(**prompt_options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        loaded = load_input(Path(self.source), sequences=[str(s) for s in batch["scene"]])
        labels = label_sequences(self.runner, loaded, self.tasks, self.origin, self.length, self.prompts)
        return {"labels": [orjson.dumps(labels.__dict__)]}


def _label_on_ray(
    runner: ModelRunner,
    source: Path,
    scenes: list[str],
    tasks: tuple[str, ...],
    origin: str,
    length: int,
    prompts: PromptMaker,
    *,
    address: str | None,
    shard: int,
    workers: int,
) -> Labels:
    import ray.data

    from omnipt_data.build.engines import connect_ray

    connect_ray(address)
    settings = {
        "device": runner.device,
        "batch_size": runner.batch_size,
        "max_images_per_batch": runner.max_images_per_batch,
        "max_new_tokens": runner.max_new_tokens,
    }
    dataset = ray.data.from_items([{"scene": s} for s in scenes]).map_batches(
        _RayLabeler,
        batch_size=shard,
        concurrency=workers,
        fn_constructor_kwargs={
            "model": str(runner.path),
            "settings": settings,
            "source": str(source),
            "tasks": tasks,
            "origin": origin,
            "length": length,
            "prompt_options": prompts.options,
        },
    )
    labels = Labels()
    for row in dataset.iter_rows():
        labels.extend(Labels(**orjson.loads(bytes(row["labels"]))))
    return labels


def prelabel(
    runner: Any,
    source: Path,
    out: Path,
    *,
    tasks: tuple[str, ...] = ("tracks", "captions"),
    model_name: str | None = None,
    length: int = 8,
    prompts: PromptMaker | None = None,
    overwrite: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    shard: int = 4,
    workers: int = 1,
) -> dict[str, Any]:
    """Pre-label ``source`` (a store or folders of frames) into a predictions store with provenance
    (see :func:`label_sequences`). ``engine="ray"`` runs it as a Ray Data pipeline, ``shard`` scenes per
    task on ``workers`` actors that each load the model once; the rows come back in scene order."""
    unknown = [t for t in tasks if t not in PRELABEL_TASKS]
    if unknown:
        raise OmniptError(f"unknown pre-label task(s) {unknown}; tasks: {', '.join(PRELABEL_TASKS)}")
    loaded = load_input(source)
    prompts = prompts or PromptMaker()
    name = model_name or Path(getattr(runner, "path", "model")).name
    origin = SOURCE_PREDICTION_PREFIX + name
    if engine == "ray":
        scenes = [s.name for s in loaded.sequences]
        labels = _label_on_ray(
            runner,
            Path(source),
            scenes,
            tasks,
            origin,
            length,
            prompts,
            address=ray_address,
            shard=shard,
            workers=workers,
        )
    elif engine == "local":
        labels = label_sequences(runner, loaded, tasks, origin, length, prompts)
    else:
        raise OmniptError(f"unknown engine {engine!r}; engines are local, ray")
    from omnipt_data.model import checkpoint_hash

    model_path = Path(getattr(runner, "path", ""))
    provenance = {
        "model": name,
        "checkpoint": str(model_path),
        "checkpoint_hash": checkpoint_hash(model_path) if model_path.is_dir() else None,
        "templates": ["mid/detect", "sft/clip_track", "sft/describe_track", "mid/attribute", "sft/smot"],
        "box_format": prompts.box_format,
        "tasks": list(tasks),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "unparsed_answers": labels.unparsed,
    }
    with write_store(
        out,
        source={"format": "prelabel", "path": str(Path(source).resolve())},
        reader={"name": "prelabel", "version": "1"},
        image_roots=loaded.image_roots,
        overwrite=overwrite,
        extra_manifest={"prediction": provenance},
    ) as writer:
        writer.write("sequences", loaded.sequence_rows)
        writer.write("frames", loaded.frames)
        for table, rows in (
            ("boxes", labels.boxes),
            ("semantics", labels.semantics),
            ("expressions", labels.expressions),
            ("referents", labels.referents),
        ):
            if rows:
                writer.write(table, pl.DataFrame(rows, infer_schema_length=None))
    return provenance | {
        "boxes": len(labels.boxes),
        "semantics": len(labels.semantics),
        "expressions": len(labels.expressions),
    }
