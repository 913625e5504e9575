"""What a schedule learnt, per stage: tracking HOTA on held-out sequences, the learning curve, a picture.

- :func:`tracking_hota`: a checkpoint tracks a store's sequences with the project's tracker
  (:func:`omnipt_data.infer.run.run_track`, prompts as the builds render them) and TrackEval scores it;
- :func:`write_curve`: exact format, box F1 and HOTA before training and after each stage, as
  ``curve.json`` and ``curve.png``, with the image reliance (how much the answers depend on the images,
  :mod:`omnipt_data.train.probe`) on a second axis;
- :func:`draw_probe_frame`: a held-out frame with its true boxes and the boxes the model answered before
  and after training, side by side, as a PNG (people would rather look than read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from omnipt_data.answers import parse_answer, scale_boxes
from omnipt_data.rewards import load_solution
from omnipt_data.store import write_json
from omnipt_data.train.data import Build, Row

CURVE_JSON = "curve.json"
CURVE_PNG = "curve.png"
PROBE_FRAME_PNG = "probe-frame.png"
TRUE_COLOUR = (40, 220, 60)
PREDICTED_COLOUR = (235, 40, 40)


@dataclass
class CurvePoint:
    """The probes of one checkpoint: ``base`` (before training) or a stage, with the steps so far."""

    stage: str
    steps: int
    exact_format: float | None
    box_f1: float | None
    hota: float | None
    image_reliance: float | None = None


def tracking_hota(
    model: Path,
    store: Path,
    out: Path,
    build: Build,
    *,
    length: int = 2,
    max_new_tokens: int = 128,
) -> float:
    """HOTA of ``model`` tracking every sequence of ``store`` (results in ``out``), prompted as ``build``
    renders its samples (box format, processor, pixel bounds)."""
    from omnipt_data.evaluate.store_gt import evaluate_store
    from omnipt_data.infer.run import ModelRunner, run_track
    from omnipt_data.infer.tracker import PromptMaker

    runner = ModelRunner.load(model, batch_size=8, max_new_tokens=max_new_tokens)
    prompts = PromptMaker(
        box_format=build.box_format,
        processor=build.processor,
        max_pixels=build.max_pixels,
        min_pixels=build.min_pixels,
    )
    run_track(runner, store, out, length=length, prompts=prompts, overwrite=True)
    return float(evaluate_store(store, out).combined["HOTA"])


def write_curve(points: Sequence[CurvePoint], out: Path, *, title: str = "learning curve") -> list[Path]:
    """``curve.json`` and ``curve.png`` (exact format, box F1, HOTA per checkpoint) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    write_json(out / CURVE_JSON, {"points": [asdict(p) for p in points]})
    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    labels = [p.stage for p in points]
    for key, name, marker in (
        ("exact_format", "exact format", "o"),
        ("box_f1", "box F1 (IoU 0.5)", "s"),
        ("hota", "tracking HOTA", "^"),
    ):
        values = [getattr(p, key) for p in points]
        shown = [(i, v) for i, v in enumerate(values) if v is not None]
        if shown:
            axis.plot([i for i, _ in shown], [v for _, v in shown], marker=marker, label=name)
    axis.set_xticks(range(len(labels)), [f"{p.stage}\n{p.steps} steps" for p in points], fontsize=8)
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("held-out score")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    handles, names = axis.get_legend_handles_labels()
    probed = [i for i, p in enumerate(points) if p.image_reliance is not None]
    if probed:
        reliance = [points[i].image_reliance or 0.0 for i in probed]
        second = axis.twinx()
        (line,) = second.plot(probed, reliance, "d--", color="grey", label="image reliance")
        second.axhline(0, color="grey", linewidth=0.5)
        # At least half a nat of range, so that noise around 0 (a model that ignores its images) looks flat.
        second.set_ylim(min(-0.05, 1.1 * min(reliance)), max(0.5, 1.1 * max(reliance)))
        second.set_ylabel("image reliance (nats per answer token)", fontsize=8)
        handles, names = [*handles, line], [*names, "image reliance"]
    axis.legend(handles, names, loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(out / CURVE_PNG)
    plt.close(figure)
    return [out / CURVE_JSON, out / CURVE_PNG]


def draw_probe_frame(row: Row, answers: Sequence[tuple[str, str]], path: Path, *, scale: int = 2) -> Path:
    """One panel per ``(caption, answer text)`` of the row's image: true boxes green, answered boxes red.

    The boxes of the solution and of the answers are in the pixels the model saw; they are drawn on the
    original frame, enlarged ``scale`` times.
    """
    from PIL import Image, ImageDraw

    solution = load_solution(row["solution"])
    frame = Image.open(row["images"][0]).convert("RGB")
    model_size = solution.image_size or frame.size
    size = (frame.width * scale, frame.height * scale)
    frame = frame.resize(size, Image.Resampling.NEAREST)
    truth = scale_boxes(solution.answer.boxes(), model_size, size)
    header = 16
    sheet = Image.new("RGB", (size[0] * len(answers), size[1] + header), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (caption, text) in enumerate(answers):
        left = index * size[0]
        sheet.paste(frame, (left, header))
        answered = parse_answer(text, solution.box_format, model_size).answer
        predicted = scale_boxes(answered.boxes(), model_size, size)
        for boxes, colour, width in ((truth, TRUE_COLOUR, 2), (predicted, PREDICTED_COLOUR, 2)):
            for box in boxes:
                x1, y1, x2, y2 = (round(value) for value in box.corners)
                draw.rectangle([left + x1, header + y1, left + x2, header + y2], outline=colour, width=width)
        label = f"{caption}: {len(predicted)} boxes (red), {len(truth)} true (green)"
        draw.text((left + 4, 2), label, fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def busiest_example(rows: Sequence[Row], count: int) -> int:
    """Index of the row with the most true boxes among the first ``count`` (the probe keeps their answers)."""
    sizes = [len(load_solution(row["solution"]).answer.boxes()) for row in rows[:count]]
    return max(range(len(sizes)), key=lambda i: (sizes[i], -i))
