"""Every benchmark, each as our figure, a peer's figure measured in the same run on the same input, and
their ratio. Run with ``scripts/bench`` (it prepares ``.venv-bench`` with the peers that are not our
dependencies: Datumaro and py-motmetrics, which needs NumPy 1).

In-process timings exclude interpreter start-up and imports on both sides (peers run in their own
process); whole-process timings are what a user waits for: the command from start to exit, with its peak
resident memory, against the peer's script doing the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from omnipt_data.store import Store

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
console = Console()
rows: list[dict[str, Any]] = []


def record(
    bench: str, ours: str, ours_value: float, peer: str, peer_value: float, unit: str, better: str
) -> None:
    """``better`` = "lower" (seconds, bytes) or "higher" (throughput); ratio > 1 means we are ahead."""
    ratio = peer_value / ours_value if better == "lower" else ours_value / peer_value
    rows.append(
        {
            "benchmark": bench,
            "ours": ours,
            "ours_value": ours_value,
            "peer": peer,
            "peer_value": peer_value,
            "unit": unit,
            "ratio": ratio,
        }
    )
    console.print(
        f"{bench}: {ours} {ours_value:.3g} {unit} vs {peer} {peer_value:.3g} {unit} -> x{ratio:.2f}"
    )


def peer(kind: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(PEER_PYTHON), str(ROOT / "bench" / "peers.py"), kind, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def omnipt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "omnipt_data.cli", *args], capture_output=True, text=True, check=True
    )


def synth_world(out: Path, *, scenes: int, frames: int, people: int, formats: str) -> None:
    """A synthetic world without images (the peers read annotations only)."""
    omnipt(
        "synth",
        "--out",
        str(out),
        "--scenes",
        str(scenes),
        "--frames",
        str(frames),
        "--people",
        str(people),
        "--no-render",
        "--formats",
        formats,
    )


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The shortest of ``runs`` timings of ``work`` (a shared machine's noise only ever adds time)."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def timed_rss(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of a command, through GNU time."""
    started = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, int(out.stderr.strip().splitlines()[-1]) * 1024


def whole_process(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS of a command run from start to exit, each the best of two runs."""
    runs = [timed_rss(command) for _ in range(2)]
    return min(s for s, _ in runs), min(r for _, r in runs)


def record_process(bench: str, ours: tuple[float, int], peer: tuple[float, int], peer_name: str) -> None:
    """Whole processes (see :func:`whole_process`), ours and the peer's: time and peak memory."""
    record(f"{bench}, whole process", "omnipt-data", ours[0], peer_name, peer[0], "s", "lower")
    mib = 2**20
    record(f"{bench}, peak RSS", "omnipt-data", ours[1] / mib, peer_name, peer[1] / mib, "MiB", "lower")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "omnipt_data.cli", *args]


def peer_command(kind: str, *args: str) -> list[str]:
    return [str(PEER_PYTHON), str(ROOT / "bench" / "peers.py"), kind, *args]


def copies(world: Path, out: Path, factor: int) -> Path:
    """``factor`` copies of a MOT world's sequences under new names: the same data, ``factor`` times."""
    for sequence in sorted(world.glob("*/*")):
        for k in range(factor):
            target = out / sequence.parent.name / f"{sequence.name}-{k}"
            shutil.copytree(sequence, target)
            info = target / "seqinfo.ini"
            info.write_text(info.read_text().replace(f"name={sequence.name}", f"name={target.name}"))
    return out


# --- conversion -------------------------------------------------------------------------------------


def bench_convert_mot(work: Path, scenes: int) -> None:
    from omnipt_data.convert import convert

    world = work / "mot-world"
    synth_world(world, scenes=scenes, frames=600, people=30, formats="mot")
    for det in world.glob("mot/*/*/det"):  # Datumaro's mot_seq reads gt only: compare like with like
        shutil.rmtree(det)
    ours = best_of(
        3, lambda: convert("mot", world / "mot", work / "mot-store", overwrite=True, show_progress=False)
    )
    boxes = Store.open(work / "mot-store").manifest["counts"]["boxes"]
    console.print(
        "  where a MOT conversion's time goes: " + convert_breakdown("mot", world / "mot", work / "mot-store")
    )
    gt_files = sorted(world.glob("mot/*/*/gt/gt.txt"))
    floor = best_of(3, lambda: [pl.read_csv(p, has_header=False) for p in gt_files])
    assert sum(pl.read_csv(p, has_header=False).height for p in gt_files) == boxes

    # Datumaro's mot_seq merges the sequences of one import by frame number: one import per sequence
    sequences = [str(p) for p in sorted(world.glob("mot/*/*"))]
    datumaro = min((peer("datumaro", "mot_seq", *sequences) for _ in range(2)), key=lambda r: r["seconds"])
    console.print(f"  MOT input: {boxes} boxes; Datumaro read {datumaro['boxes']}")
    bench = f"convert MOT ({boxes:,} boxes)"
    record(bench, "omnipt-data", ours, "Datumaro mot_seq", datumaro["seconds"], "s", "lower")
    record(bench, "omnipt-data", ours, "raw polars read_csv (floor)", floor, "s", "lower")
    record_process(
        bench,
        whole_process(
            cli("convert", "mot", str(world / "mot"), "--out", str(work / "cli"), "-q", "--overwrite")
        ),
        whole_process(peer_command("datumaro", "mot_seq", *sequences)),
        "Datumaro mot_seq",
    )
    # memory against input size: the same sequences ten times
    large = copies(world / "mot", work / "mot-world-10x", 10)
    rss = {}
    for factor, source in ((1, world / "mot"), (10, large)):
        _, rss[factor] = timed_rss(
            cli("convert", "mot", str(source), "--out", str(work / "mot-rss"), "-q", "--overwrite")
        )
        console.print(f"  convert MOT x{factor}: peak RSS {rss[factor] / 2**20:.0f} MiB")
    shutil.rmtree(large)
    record(
        "convert MOT peak RSS, 10x input",
        "RSS at 1x",
        rss[1] / 2**20,
        "RSS at 10x",
        rss[10] / 2**20,
        "MiB",
        "lower",
    )


# Where a conversion's time goes beyond the reader's ``read_unit`` (parsing the files, composing the rows):
# the store's functions timed, by the part they stand for. The reader runs one unit ahead in its own thread
# and Parquet encoding in another, so the parts overlap and may add up to more than the wall time.
CONVERT_PARTS = (
    ("schema conforming", None, "conform"),
    ("checks", "StreamValidator", "add"),
    ("checks", "StreamValidator", "finish"),
    ("counts", "StoreWriter", "_count"),
    ("Parquet encoding", "_TableWriter", "_write"),
    ("file hashes", None, "file_sha256"),
)


def convert_breakdown(format_name: str, source: Path, out: Path) -> str:
    """Time one conversion's parts (see :data:`CONVERT_PARTS`) in seconds, each summed over its calls."""
    import threading
    from contextlib import ExitStack
    from unittest import mock

    from omnipt_data import store
    from omnipt_data.convert import convert
    from omnipt_data.readers import get_reader

    spent: dict[str, float] = {}
    lock = threading.Lock()

    def add(part: str, seconds: float) -> None:
        with lock:
            spent[part] = spent.get(part, 0.0) + seconds

    def timed(part: str, function: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            if not hasattr(result, "__next__"):
                add(part, time.perf_counter() - started)
                return result
            return timed_iteration(part, result, time.perf_counter() - started)

        return call

    def timed_iteration(part: str, items: Any, seconds: float) -> Any:  # a generator's time is its steps'
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                add(part, seconds + time.perf_counter() - started)
                return
            seconds += time.perf_counter() - started
            yield item

    with ExitStack() as patches:
        reader = get_reader(format_name)
        patches.enter_context(
            mock.patch.object(
                reader, "read_unit", timed("reading (parse files, compose rows)", reader.read_unit)
            )
        )
        for part, owner_name, attribute in CONVERT_PARTS:
            owner = getattr(store, owner_name) if owner_name else store
            patches.enter_context(mock.patch.object(owner, attribute, timed(part, getattr(owner, attribute))))
        started = time.perf_counter()
        convert(format_name, source, out, overwrite=True, show_progress=False)
        wall = time.perf_counter() - started
    parts = ", ".join(
        f"{part} {seconds:.3f} s" for part, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
    )
    return f"{parts} (threads overlap; wall {wall:.3f} s)"


def bench_convert_coco(work: Path, scenes: int) -> None:
    import orjson

    from omnipt_data.convert import convert

    world = work / "coco-world"
    synth_world(world, scenes=scenes, frames=600, people=30, formats="coco")
    coco = world / "coco"
    for keypoints in coco.glob("annotations/person_keypoints_*.json"):
        keypoints.unlink()  # one annotation file per split for every tool
    annotations = sorted(coco.glob("annotations/instances_*.json"))
    ours = best_of(3, lambda: convert("coco", coco, work / "coco-store", overwrite=True, show_progress=False))
    boxes = Store.open(work / "coco-store").manifest["counts"]["boxes"]
    console.print(
        "  where a COCO conversion's time goes: " + convert_breakdown("coco", coco, work / "coco-store")
    )
    # the least any reader does: parse the files (a polars frame of the annotations as they are, with their
    # nested segmentation lists, takes longer than the whole conversion), with the cyclic garbage collector
    # paused as the reader pauses it (left on, it walks the new objects over and over: 1.7x the time)
    floor = best_of(3, lambda: parse_paused(annotations))

    for path in annotations:  # the peers want images/<subset>/<file_name> to exist (they do not read them)
        folder = coco / "images" / path.stem.removeprefix("instances_")
        folder.mkdir(parents=True, exist_ok=True)
        for image in orjson.loads(path.read_bytes())["images"]:
            (folder / image["file_name"]).touch()
    datumaro = min(peer("datumaro", "coco_instances", *map(str, annotations))["seconds"] for _ in range(2))

    fiftyone = _fiftyone_coco(coco, annotations)
    record(
        f"convert COCO person ({boxes:,} boxes)",
        "omnipt-data",
        ours,
        "Datumaro coco_instances",
        datumaro,
        "s",
        "lower",
    )
    record(
        f"convert COCO person ({boxes:,} boxes)",
        "omnipt-data",
        ours,
        "FiftyOne COCODetectionDataset",
        fiftyone,
        "s",
        "lower",
    )
    record(
        f"convert COCO person ({boxes:,} boxes)",
        "omnipt-data",
        ours,
        "orjson parse alone (floor)",
        floor,
        "s",
        "lower",
    )
    record_process(
        f"convert COCO person ({boxes:,} boxes)",
        whole_process(cli("convert", "coco", str(coco), "--out", str(work / "cli"), "-q", "--overwrite")),
        whole_process(peer_command("datumaro", "coco_instances", *map(str, annotations))),
        "Datumaro coco_instances",
    )


def parse_paused(paths: list[Path]) -> list[Any]:
    import orjson

    from omnipt_data.readers.coco import collector_paused

    with collector_paused():
        return [orjson.loads(path.read_bytes()) for path in paths]


def _fiftyone_coco(coco: Path, annotations: list[Path]) -> float:
    code = (
        "import time, fiftyone as fo\n"
        "fo.list_datasets()\n"  # its database starts on first use: outside the timing, as our imports are
        "started = time.perf_counter()\n"
        "for labels in {paths!r}:\n"
        "    split = labels.rsplit('instances_', 1)[1].removesuffix('.json')\n"
        "    fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset,"
        " data_path={images!r} + '/' + split, labels_path=labels, label_types=['detections'])\n"
        "print(time.perf_counter() - started)\n"
    ).format(paths=[str(p) for p in annotations], images=str(coco / "images"))
    with tempfile.TemporaryDirectory() as database:
        # its own database in a temporary folder, never one the environment names (a user's datasets)
        env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_DATABASE_URI"} | {
            "FIFTYONE_DATABASE_DIR": database,
            "FIFTYONE_DO_NOT_TRACK": "true",
            "FIFTYONE_DATABASE_VALIDATION": "false",
        }
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
    return float(out.stdout.strip().splitlines()[-1])


# --- builds: throughput and memory against input size -----------------------------------------------


def bench_build_memory(work: Path, scenes: int) -> None:
    results = {}
    for factor in (1, 10):
        world, store = work / f"build-world-{factor}", work / f"build-store-{factor}"
        synth_world(world, scenes=scenes * factor, frames=120, people=20, formats="mot")
        omnipt("convert", "mot", str(world / "mot"), "--out", str(store), "-q")
        # sizes are needed for boxes in model space, and a no-render world has none on disk: seqinfo has them
        seconds, rss = timed_rss(
            [
                sys.executable,
                "-m",
                "omnipt_data.cli",
                "build",
                "--stage",
                "sft",
                "--store",
                str(store),
                "--out",
                str(work / f"build-{factor}"),
                "--tasks",
                "mot_step",
                "-q",
            ]
        )
        samples = json.loads((work / f"build-{factor}" / "manifest.json").read_text())["samples"]
        results[factor] = (samples, seconds, rss)
        console.print(
            f"  build x{factor}: {samples} samples in {seconds:.1f} s, peak RSS {rss / 2**20:.0f} MiB"
        )
    in_process = build_in_process(work / "build-store-1", work / "build-in")
    console.print(f"  build x1 in process: {in_process:.0f} samples/s (start-up excluded)")
    console.print(
        "  where a build's time goes: " + build_breakdown(work / "build-store-1", work / "build-profiled")
    )
    (s1, t1, r1), (s10, t10, r10) = results[1], results[10]
    record(
        f"build SFT throughput ({s10:,} samples, 10x input)",
        "samples/s at 10x",
        s10 / t10,
        "samples/s at 1x",
        s1 / t1,
        "samples/s",
        "higher",
    )
    record(
        "build SFT peak RSS, 10x input", "RSS at 1x", r1 / 2**20, "RSS at 10x", r10 / 2**20, "MiB", "lower"
    )


# Where build time goes, by the file (or built-in) a function lives in; the first match names it. The
# time of anything else (built-ins, the standard library) goes to whatever called it.
BUILD_PARTS = (
    ("JSON", ("orjson",)),
    ("hashing", ("hashlib", "sha256")),
    ("resizing", ("smart_resize", "PIL/")),
    ("sampling (store reads, clips)", ("build/samplers", "build/source.py", "build/draft.py", "polars")),
    ("rendering (answers, templates)", ("omnipt_data/answers.py", "build/builder.py", "build/templates.py")),
    ("writing", ("exporters.py", "_io.BufferedWriter")),
)


def build_in_process(store: Path, out: Path) -> float:
    """Samples/s of a build in this process (imports and start-up excluded), best of three."""
    from omnipt_data.build import BuildOptions, build

    options = BuildOptions(stage="sft", stores=[store], out=out, tasks=["mot_step"], show_progress=False)
    seconds = best_of(3, lambda: build(replace(options, overwrite=True)))
    return json.loads((out / "manifest.json").read_text())["samples"] / seconds


def build_breakdown(store: Path, out: Path) -> str:
    """Profile a build of ``store`` in this process and share its time out over :data:`BUILD_PARTS`."""
    import cProfile
    import pstats

    from omnipt_data.build import BuildOptions, build

    profiler = cProfile.Profile()
    profiler.enable()
    build(BuildOptions(stage="sft", stores=[store], out=out, tasks=["mot_step"], show_progress=False))
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def parts(key: tuple, depth: int = 0) -> dict[str, float]:
        where = f"{key[0]}:{key[2]}"
        named = next((name for name, needles in BUILD_PARTS if any(n in where for n in needles)), None)
        callers = stats[key][4] if key in stats else {}
        if named or depth > 8 or not callers:
            return {named or "other": 1.0}
        total = sum(c[2] + 1e-9 for c in callers.values())
        weights: dict[str, float] = {}
        for caller, c in callers.items():
            for part, w in parts(caller, depth + 1).items():
                weights[part] = weights.get(part, 0.0) + w * (c[2] + 1e-9) / total
        return weights

    shares: dict[str, float] = {}
    for key, (_, _, own, _, _) in stats.items():
        for part, weight in parts(key).items():
            shares[part] = shares.get(part, 0.0) + own * weight
    total = sum(shares.values()) or 1.0
    return ", ".join(
        f"{part} {100 * t / total:.0f}%" for part, t in sorted(shares.items(), key=lambda kv: -kv[1])
    )


# --- evaluation -------------------------------------------------------------------------------------


def _noisy_results(gt_root: Path, pred_root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pred_root.mkdir(parents=True, exist_ok=True)
    for seq in sorted(gt_root.iterdir()):
        rows = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
        rows = rows[rows[:, 6] == 1]
        keep = rng.random(len(rows)) > 0.1  # misses
        rows = rows[keep]
        rows[:, 2:6] += rng.normal(0, 2.0, size=(len(rows), 4))
        swap = rng.choice(np.unique(rows[:, 1]), size=2, replace=False)  # one identity swap half-way
        later = rows[:, 0] > rows[:, 0].max() / 2
        a, b = (rows[:, 1] == swap[0]) & later, (rows[:, 1] == swap[1]) & later
        rows[a, 1], rows[b, 1] = swap[1], swap[0]
        lines = [
            f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},1,-1,-1,-1" for r in rows
        ]
        (pred_root / f"{seq.name}.txt").write_text("\n".join(lines) + "\n")


def bench_eval(work: Path, scenes: int) -> None:
    # Imports outside the timings, on both sides (evaluation loads TrackEval's metrics and SciPy lazily).
    import scipy.optimize  # noqa: F401
    import trackeval  # noqa: F401

    from omnipt_data.evaluate.mot import evaluate_mot

    world = work / "eval-world"
    synth_world(world, scenes=scenes, frames=300, people=20, formats="mot")
    gt_root = world / "mot" / "train"
    pred = work / "eval-pred"
    _noisy_results(gt_root, pred)
    started = time.perf_counter()
    ours = evaluate_mot(gt_root, pred).combined
    ours_seconds = time.perf_counter() - started

    started = time.perf_counter()
    direct = _trackeval_direct(work, gt_root, pred)
    direct_seconds = time.perf_counter() - started
    motmetrics = peer("motmetrics", str(gt_root), str(pred))
    console.print(
        f"  MOTA ours {ours['MOTA']:.4f} / TrackEval {direct['MOTA']:.4f} / "
        f"motmetrics {motmetrics['MOTA']:.4f}; IDF1 ours {ours['IDF1']:.4f} / "
        f"TrackEval {direct['IDF1']:.4f} / "
        f"motmetrics {motmetrics['IDF1']:.4f}"
    )
    record(
        "evaluate (HOTA+CLEAR+Identity)",
        "omnipt-data eval",
        ours_seconds,
        "TrackEval called directly",
        direct_seconds,
        "s",
        "lower",
    )
    record(
        "evaluate (CLEAR+Identity only for the peer)",
        "omnipt-data eval",
        ours_seconds,
        "py-motmetrics 1.4",
        motmetrics["seconds"],
        "s",
        "lower",
    )
    ours_process = whole_process(
        cli("eval", "--gt", str(gt_root), "--pred", str(pred), "--json", str(work / "eval.json"))
    )
    record_process(
        "evaluate (HOTA+CLEAR+Identity)",
        ours_process,
        whole_process([sys.executable, "-c", TRACKEVAL_SCRIPT, str(work / "te")]),
        "TrackEval called directly",
    )
    record_process(
        "evaluate (CLEAR+Identity only for the peer)",
        ours_process,
        whole_process(peer_command("motmetrics", str(gt_root), str(pred))),
        "py-motmetrics 1.4",
    )


# TrackEval as a user's script, on the folders _trackeval_direct lays out (for whole-process timings)
TRACKEVAL_SCRIPT = """
import sys, trackeval
root = sys.argv[1]
quiet = {"PRINT_CONFIG": False}
evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
    "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "TIME_PROGRESS": False})
dataset = trackeval.datasets.MotChallenge2DBox({"GT_FOLDER": root + "/gt",
    "TRACKERS_FOLDER": root + "/trackers", "BENCHMARK": "SYN", "SPLIT_TO_EVAL": "train",
    "TRACKERS_TO_EVAL": ["bench"], "PRINT_CONFIG": False})
metrics = [trackeval.metrics.HOTA(quiet), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
evaluator.evaluate([dataset], metrics)
"""


def _trackeval_direct(work: Path, gt_root: Path, pred: Path) -> dict[str, float]:
    import trackeval

    gt_folder, trackers = work / "te" / "gt", work / "te" / "trackers"
    bench = "SYN"
    seqmaps = gt_folder / "seqmaps"
    seqmaps.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in gt_root.iterdir())
    (seqmaps / f"{bench}-train.txt").write_text("name\n" + "\n".join(names) + "\n")
    for name in names:
        target = gt_folder / f"{bench}-train" / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(gt_root / name / "gt", target / "gt", dirs_exist_ok=True)
        shutil.copy(gt_root / name / "seqinfo.ini", target / "seqinfo.ini")
    data = trackers / f"{bench}-train" / "bench" / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(pred / f"{name}.txt", data / f"{name}.txt")
    evaluator = trackeval.Evaluator(
        {
            "USE_PARALLEL": False,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
            "TIME_PROGRESS": False,
            "OUTPUT_EMPTY_CLASSES": False,
        }
    )
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(gt_folder),
            "TRACKERS_FOLDER": str(trackers),
            "BENCHMARK": bench,
            "SPLIT_TO_EVAL": "train",
            "TRACKERS_TO_EVAL": ["bench"],
            "PRINT_CONFIG": False,
        }
    )
    metrics = [
        trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    results, _ = evaluator.evaluate([dataset], metrics)
    combined = results["MotChallenge2DBox"]["bench"]["COMBINED_SEQ"]["pedestrian"]
    return {"MOTA": float(combined["CLEAR"]["MOTA"]), "IDF1": float(combined["Identity"]["IDF1"])}


# --- pre-labeling: batched against one-by-one generation ------------------------------------------------


def bench_prelabel(work: Path, prompts_count: int) -> None:
    from omnipt_data.build.draft import Image
    from omnipt_data.infer.tracker import PromptMaker, _template
    from omnipt_data.model import build_tiny_qwen_vl, generate_batch, generate_one_by_one, load_model

    world = work / "prelabel-world"
    omnipt(
        "synth",
        "--out",
        str(world),
        "--scenes",
        "1",
        "--frames",
        str(prompts_count + 4),
        "--width",
        "224",
        "--height",
        "168",
        "--formats",
        "mot",
    )
    frames = sorted(world.glob("mot/train/*/img1/*.jpg"))
    model_dir = build_tiny_qwen_vl(work / "tiny-model", seed=0)
    model, processor = load_model(model_dir)
    maker, template = PromptMaker(), _template("mid", "detect")
    prompts = [
        maker.prompt(template, str(i), [Image(str(p), (224, 168))], {})[0]
        for i, p in enumerate(frames[:prompts_count])
    ]
    settings = {"max_new_tokens": 32}
    generate_batch(model, processor, prompts[:2], **settings)  # warm-up
    started = time.perf_counter()
    batched = generate_batch(model, processor, prompts, batch_size=8, **settings)
    batched_seconds = time.perf_counter() - started
    started = time.perf_counter()
    single = generate_one_by_one(model, processor, prompts, **settings)
    single_seconds = time.perf_counter() - started
    same = sum(a == b for a, b in zip(batched, single, strict=True))
    device = next(model.parameters()).device
    console.print(
        f"  {prompts_count} frames on {device}: {same}/{prompts_count} answers identical batched / one by one"
    )
    record(
        f"pre-label frames/s ({device}, tiny model)",
        "batched (8)",
        prompts_count / batched_seconds,
        "one-by-one generate()",
        prompts_count / single_seconds,
        "frames/s",
        "higher",
    )
    bench_prelabel_process(work, model_dir, prompts_count, device.type)


def bench_prelabel_process(work: Path, model_dir: Path, sequences: int, device: str) -> None:
    """``omnipt-data prelabel`` as a user runs it, batched (8) against one prompt per generate() call.

    The tracker batches across sequences (a sequence's clips follow one another), so the input is
    ``sequences`` two-frame sequences: a batch of single-frame prompts, then one of two-frame clips.
    """
    world, store = work / "prelabel-process-world", work / "prelabel-process-store"
    omnipt(
        "synth",
        *("--out", str(world), "--scenes", str(sequences), "--frames", "2"),
        *("--width", "224", "--height", "168", "--formats", "mot"),
    )
    omnipt("convert", "mot", str(world / "mot"), "--out", str(store), "-q")

    def command(batch_size: int) -> list[str]:
        return cli(
            "prelabel",
            *("--model", str(model_dir), "--input", str(store), "--out", str(work / "prelabel-out")),
            *("--tasks", "tracks", "--length", "2", "--max-new-tokens", "32", "--device", device),
            *("--batch-size", str(batch_size), "--overwrite"),
        )

    batched, single = whole_process(command(8)), whole_process(command(1))
    bench = f"pre-label {2 * sequences} prompts ({device}, tiny model)"
    mib = 2**20
    record(
        f"{bench}, whole process",
        "prelabel --batch-size 8",
        batched[0],
        "--batch-size 1",
        single[0],
        "s",
        "lower",
    )
    record(
        f"{bench}, peak RSS",
        "prelabel --batch-size 8",
        batched[1] / mib,
        "--batch-size 1",
        single[1] / mib,
        "MiB",
        "lower",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scale", type=int, default=20, help="Scenes of 600 frames in the conversion inputs."
    )
    parser.add_argument("--only", default="", help="Comma-separated subset: mot,coco,build,eval,prelabel.")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench", help="Where results.json goes.")
    args = parser.parse_args()
    chosen = set(filter(None, args.only.split(","))) or {"mot", "coco", "build", "eval", "prelabel"}
    if chosen & {"mot", "coco", "eval"} and not PEER_PYTHON.exists():
        raise SystemExit(
            f"{PEER_PYTHON} is missing: run scripts/bench, which prepares the peers' environment"
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "mot" in chosen:
            bench_convert_mot(work, args.scale)
        if "coco" in chosen:
            bench_convert_coco(work, args.scale)
        if "build" in chosen:
            bench_build_memory(work, max(args.scale // 5, 1))
        if "eval" in chosen:
            bench_eval(work, max(args.scale // 2, 1))
        if "prelabel" in chosen:
            bench_prelabel(work, 16)
    table = Table(title="omnipt-data benchmarks (ratio > 1: ours ahead)")
    for column in ("benchmark", "ours", "peer", "ratio"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["benchmark"],
            f"{row['ours']}: {row['ours_value']:.3g} {row['unit']}",
            f"{row['peer']}: {row['peer_value']:.3g} {row['unit']}",
            f"x{row['ratio']:.2f}",
        )
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    console.print(f"results -> {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
