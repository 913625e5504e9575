"""Write person crops of the world as MSMT17: ``msmt17/MSMT17_V1/{train,test}/<pid>/`` + list files.

The crops are the Market-1501 writer's people (:func:`~omnipt_data.synth.formats.market1501.reid_crops`;
MSMT17 has no junk or distractors). Person ids are numbered from 0 separately in ``train/`` (the training
scenes) and ``test/`` (the validation scenes), as in MSMT17. In train, a person's last crop goes to
``list_val.txt`` when they have several; in test, the first crop per person and camera goes to
``list_query.txt`` and the rest to ``list_gallery.txt``. Names are
``<pid>_<index>_<camera:02d>_<session>_<frame:04d>_<box>.jpg``: index counts the person's crops, the
session (``0301morning`` for the first scene, ``0302morning`` ...) stands for MSMT17's capture date and
time of day. The list files are written also when the world is not rendered (then without images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnipt_data.synth.formats.market1501 import PERSON, Crop, reid_crops, save_crops
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

LISTS = ("train", "val", "query", "gallery")


@dataclass(frozen=True)
class MsmtImage:
    crop: Crop
    pid: int
    folder: str  # "train" or "test"
    relative: str  # "<pid>/<name>.jpg", as written in the list
    list_name: str  # train, val, query or gallery


def session(scene_index: int) -> str:
    """A capture session name in MSMT17's style for a scene: month, day, time of day."""
    return f"{3 + scene_index // 28 % 10:02d}{scene_index % 28 + 1:02d}morning"


def msmt17_images(world: World) -> list[MsmtImage]:
    """Every MSMT17 image of the world, in list order."""
    crops = [c for c in reid_crops(world) if c.kind == PERSON and c.track_id is not None]
    pids: dict[tuple[bool, int, int], int] = {}
    next_pid = {False: 0, True: 0}
    for crop in crops:
        key = (crop.test, crop.scene_index, crop.track_id)
        if key not in pids:
            pids[key] = next_pid[crop.test]
            next_pid[crop.test] += 1
    by_person: dict[tuple[bool, int, int], list[Crop]] = {}
    for crop in crops:
        by_person.setdefault((crop.test, crop.scene_index, crop.track_id), []).append(crop)
    images = []
    for key, person_crops in by_person.items():
        test, pid = key[0], pids[key]
        queried: set[int] = set()
        for index, crop in enumerate(person_crops):
            fields = (f"{pid:04d}", f"{index:03d}", f"{crop.view:02d}", session(crop.scene_index))
            name = "_".join((*fields, f"{crop.frame:04d}", str(crop.box_index)))
            if test:
                list_name = "gallery" if crop.view in queried else "query"
                queried.add(crop.view)
            else:
                list_name = "val" if len(person_crops) > 1 and index == len(person_crops) - 1 else "train"
            folder = "test" if test else "train"
            images.append(MsmtImage(crop, pid, folder, f"{pid:04d}/{name}.jpg", list_name))
    return images


def write_msmt17(world: World, out: Path, frames: RenderedFrames) -> Path:
    """Write the four list files and, when rendered, the crops."""
    folder = out / "msmt17" / "MSMT17_V1"
    folder.mkdir(parents=True, exist_ok=True)
    images = msmt17_images(world)
    for list_name in LISTS:
        lines = "".join(f"{i.relative} {i.pid}\n" for i in images if i.list_name == list_name)
        (folder / f"list_{list_name}.txt").write_text(lines)
    if frames.rendered:
        save_crops(frames, [(i.crop, folder / i.folder / i.relative) for i in images])
    return folder
