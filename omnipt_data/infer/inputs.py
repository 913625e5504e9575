"""What the tracker and the pre-labeler read: a store's sequences, or folders of frames (no labels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from omnipt_data.build.draft import Image
from omnipt_data.build.source import BuildSource
from omnipt_data.errors import OmniptError
from omnipt_data.infer.tracker import SequenceInput
from omnipt_data.readers.base import image_size
from omnipt_data.schema import frame_uid, sequence_uid
from omnipt_data.store import MANIFEST

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class LoadedInput:
    sequences: list[SequenceInput]
    frames: pl.DataFrame  # the store's frames of those sequences (for writing predictions)
    sequence_rows: pl.DataFrame
    image_roots: dict[str, str]
    # scene name -> {view: sequence uid}, to write per-view results and to find expressions
    scenes: dict[str, dict[str, str]]
    store_path: Path | None = None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def from_store(
    path: Path, *, views: list[str] | None = None, sequences: list[str] | None = None
) -> LoadedInput:
    """Sequences of a store grouped by scene: the views of one scene together."""
    source = BuildSource(path)
    inputs, frame_tables, scenes = [], [], {}
    seq_rows = source.store.read("sequences")
    for (_, _, name), scene in sorted(source.scenes().items()):
        if sequences and name not in sequences:
            continue
        chosen = [s for s in scene if not views or (s.view or "") in views]
        per_view: dict[str, list[Image]] = {}
        for seq in chosen:
            frames = source.frames(seq.uid).filter(pl.col("width").is_not_null())
            if frames.height == 0:
                continue
            frame_tables.append(frames.drop("abs_path"))
            per_view[seq.view or ""] = [
                Image(p, (w, h)) for p, w, h in frames.select("abs_path", "width", "height").iter_rows()
            ]
            scenes.setdefault(name, {})[seq.view or ""] = seq.uid
        if per_view:
            inputs.append(SequenceInput(name, per_view))
    if not inputs:
        raise OmniptError(f"{path}: no sequence with images of known size to run on")
    frames = pl.concat(frame_tables)
    used = frames["sequence_uid"].unique().to_list()
    return LoadedInput(
        inputs, frames, seq_rows.filter(pl.col("sequence_uid").is_in(used)), source.roots, scenes, Path(path)
    )


def from_folder(path: Path, *, dataset: str = "video", sequences: list[str] | None = None) -> LoadedInput:
    """A folder of frames (one sequence) or a folder of such folders; images in name order."""
    folders = (
        [path] if _images_in(path) else sorted(p for p in path.iterdir() if p.is_dir() and _images_in(p))
    )
    folders = [f for f in folders if not sequences or f.name in sequences]
    if not folders:
        raise OmniptError(f"{path}: no images (expected frames in this folder or in its sub-folders)")
    inputs, rows, seq_rows, scenes = [], [], [], {}
    for folder in folders:
        name = folder.name
        uid = sequence_uid(dataset, "unlabeled", name)
        images = []
        for index, image in enumerate(_images_in(folder), start=1):
            width, height = image_size(image)
            if width is None:
                raise OmniptError(f"{image}: not a readable image")
            images.append(Image(str(image.resolve()), (width, height)))
            rows.append(
                {
                    "frame_uid": frame_uid(uid, index),
                    "sequence_uid": uid,
                    "dataset": dataset,
                    "split": "unlabeled",
                    "sequence": name,
                    "frame_index": index,
                    "image_path": str(image.resolve()),
                    "width": width,
                    "height": height,
                }
            )
        seq_rows.append(
            {
                "sequence_uid": uid,
                "dataset": dataset,
                "split": "unlabeled",
                "sequence": name,
                "length": len(images),
                "image_dir": str(folder.resolve()),
                "video": True,  # a folder of frames is a clip
            }
        )
        inputs.append(SequenceInput(name, {"": images}))
        scenes[name] = {"": uid}
    return LoadedInput(inputs, pl.DataFrame(rows), pl.DataFrame(seq_rows), {}, scenes)


def load_input(path: Path, **kwargs: object) -> LoadedInput:
    path = Path(path)
    if not path.exists():
        raise OmniptError(f"{path}: no such file or folder")
    if (path / MANIFEST).is_file():
        return from_store(path, **kwargs)  # type: ignore[arg-type]
    return from_folder(path, sequences=kwargs.get("sequences"))  # type: ignore[arg-type]
