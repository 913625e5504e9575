"""Builds stream: a build of a store larger than the memory it is allowed runs within a hard cap.

The cap is enforced on the build's process from outside (its resident memory is polled and the process
killed above the cap, as a cgroup would), because RLIMIT_AS also counts the address space that polars
and its allocator reserve without using. The cap is the memory a build of a small store needs plus half
of what the large store's tables take once loaded: a build that loaded the whole input would exceed it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from omnipt_data.schema import frame_uid, sequence_uid
from omnipt_data.store import ROW_GROUP_ROWS, Store, write_store

BUILD = (
    "from omnipt_data.build import BuildOptions, build\n"
    "build(BuildOptions(stage='sft', stores=[{store!r}], out={out!r}, tasks=['mot_step'], sample_rate=0.05,"
    " show_progress=False))\n"
)


def _store(path: Path, sequences: int, frames: int = 300, people: int = 50) -> Store:
    """A MOT-like store of ``sequences * frames * people`` boxes, made directly (fast)."""
    rng = np.random.default_rng(0)
    with write_store(path, source={"format": "generated"}, reader={"name": "test", "version": "1"}) as writer:
        for s in range(sequences):
            uid = sequence_uid("gen", "train", f"seq{s:04d}")
            index = np.arange(1, frames + 1)
            writer.write(
                "sequences",
                pl.DataFrame(
                    {
                        "sequence_uid": [uid],
                        "dataset": ["gen"],
                        "split": ["train"],
                        "sequence": [f"seq{s:04d}"],
                        "length": [frames],
                    }
                ),
            )
            writer.write(
                "frames",
                pl.DataFrame(
                    {
                        "frame_uid": [frame_uid(uid, i) for i in index],
                        "sequence_uid": uid,
                        "dataset": "gen",
                        "split": "train",
                        "sequence": f"seq{s:04d}",
                        "frame_index": index,
                        "image_path": "none.jpg",
                        "width": 640,
                        "height": 360,
                    }
                ),
            )
            start = rng.uniform(0, 560, size=(people, 2))
            step = rng.normal(0, 1, size=(people, 2))
            f, p = np.meshgrid(index, np.arange(people), indexing="ij")
            xy = np.clip(start[p] + step[p] * f[..., None], 0, 560)
            writer.write(
                "boxes",
                pl.DataFrame(
                    {
                        "box_uid": [f"{uid}#{a}/gt/{b}" for a, b in zip(f.ravel(), p.ravel(), strict=True)],
                        "frame_uid": [frame_uid(uid, a) for a in f.ravel()],
                        "track_id": p.ravel() + 1,
                        "category": "pedestrian",
                        "x1": xy[..., 0].ravel(),
                        "y1": xy[..., 1].ravel() / 2,
                        "x2": xy[..., 0].ravel() + 30,
                        "y2": xy[..., 1].ravel() / 2 + 80,
                        "ignore": False,
                        "source": "gt",
                    }
                ),
            )
    return Store.open(path)


def _peak_rss(code: str, cap: int | None = None) -> tuple[int, int]:
    """Run ``code`` in a fresh interpreter; (exit code, peak resident bytes); killed above ``cap``."""
    process = subprocess.Popen([sys.executable, "-c", code])
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            rss = int(
                next(line for line in status.read_text().splitlines() if line.startswith("VmRSS")).split()[1]
            )
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            break
        peak = max(peak, rss * 1024)
        if cap is not None and peak > cap:
            process.kill()
        time.sleep(0.02)
    return process.wait(), peak


def test_a_build_streams_within_a_memory_cap(tmp_path):
    small = _store(tmp_path / "small", sequences=2)
    large = _store(tmp_path / "large", sequences=40)
    loaded = sum(large.read(t).estimated_size() for t in ("boxes", "frames"))
    assert large.manifest["counts"]["boxes"] == 40 * 300 * 50 and loaded > 80 * 2**20

    code, small_peak = _peak_rss(BUILD.format(store=str(small.path), out=str(tmp_path / "b-small")))
    assert code == 0
    cap = small_peak + loaded // 2
    code, large_peak = _peak_rss(BUILD.format(store=str(large.path), out=str(tmp_path / "b-large")), cap=cap)
    assert code == 0, f"the build went over the cap: {large_peak / 2**20:.0f} MiB > {cap / 2**20:.0f} MiB"
    assert large_peak < cap
    # the cap is binding: the same imports plus the large store's tables loaded whole go over it
    load_all = (
        "import time, omnipt_data.build\nfrom omnipt_data.store import Store\n"
        f"store = Store.open({str(large.path)!r})\ntables = [store.read(t) for t in ('boxes', 'frames')]\n"
        "time.sleep(1)\n"
    )
    code, whole_peak = _peak_rss(load_all, cap=cap)
    assert code != 0 and whole_peak > cap
    mib = 2**20
    print(f"peak RSS small {small_peak / mib:.0f}, large {large_peak / mib:.0f}, cap {cap / mib:.0f} MiB")


CONVERT = (
    "from pathlib import Path\nfrom omnipt_data.convert import convert\n"
    "convert('mot', Path({source!r}), Path({out!r}), show_progress=False)\n"
)


def _mot_folder(root: Path, sequences: int, frames: int = 300, people: int = 50) -> Path:
    """MOTChallenge sequence folders of ``frames * people`` ground-truth rows each, written directly."""
    rng = np.random.default_rng(1)
    for s in range(sequences):
        folder = root / "train" / f"SEQ-{s:03d}"
        (folder / "gt").mkdir(parents=True)
        (folder / "seqinfo.ini").write_text(
            f"[Sequence]\nname=SEQ-{s:03d}\nseqLength={frames}\nimWidth=640\nimHeight=360\nframeRate=10\n"
        )
        f, p = np.meshgrid(np.arange(1, frames + 1), np.arange(1, people + 1), indexing="ij")
        xy = rng.uniform(0, 500, size=(f.size, 2)).round(2)
        pl.DataFrame(
            {"frame": f.ravel(), "id": p.ravel(), "x": xy[:, 0], "y": xy[:, 1] / 2, "w": 30.0, "h": 80.0}
        ).with_columns(conf=1, cls=1, vis=1.0).write_csv(folder / "gt" / "gt.txt", include_header=False)
    return root


def test_a_conversion_streams_within_a_memory_cap(tmp_path):
    """Peak memory follows the largest sequence and the rows buffered for Parquet, not the dataset: ten
    times an input of a few row groups converts within a quarter of what its tables take loaded."""
    small = _mot_folder(tmp_path / "small", sequences=16)
    large = _mot_folder(tmp_path / "large", sequences=160)
    code, small_peak = _peak_rss(CONVERT.format(source=str(small), out=str(tmp_path / "s-small")))
    assert code == 0
    store = Store.open(tmp_path / "s-small")
    assert store.manifest["counts"]["boxes"] == 16 * 300 * 50 > 3 * ROW_GROUP_ROWS
    loaded = 10 * sum(store.read(t).estimated_size() for t in ("boxes", "frames"))  # the large tables
    cap = small_peak + loaded // 4
    code, large_peak = _peak_rss(CONVERT.format(source=str(large), out=str(tmp_path / "s-large")), cap=cap)
    mib = 2**20
    assert code == 0, f"the conversion went over the cap: {large_peak / mib:.0f} MiB > {cap / mib:.0f} MiB"
    assert Store.open(tmp_path / "s-large").manifest["counts"]["boxes"] == 160 * 300 * 50
    print(f"convert peak RSS x1 {small_peak / mib:.0f}, x10 {large_peak / mib:.0f}, cap {cap / mib:.0f} MiB")
