"""Clip samplers: tracking steps and clips, referring (single and cross-view) and semantic MOT.

Frames of a clip are numbered 1..L in the sample (``Frame n:``); track ids are renumbered 1..N per
sample in order of first appearance (frame, then left to right), so ids stay small whatever the dataset
uses. A clip is ``length`` frames taken every ``frame_step`` frames; clips start every ``stride`` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from random import Random
from typing import Any

import polars as pl

from omnipt_data.answers import Answer, Box
from omnipt_data.build.draft import (
    BOX_COLUMNS,
    Draft,
    Image,
    Turn,
    boxes_of,
    gt_boxes,
    target_boxes,
    to_boxes,
)
from omnipt_data.build.source import BuildSource, draws_for
from omnipt_data.interactions import words_of


def _spans(count: int, params: dict[str, Any]) -> Iterator[slice]:
    """The clips of ``count`` frames: ``length`` frames every ``frame_step``, starting every ``stride``."""
    length = int(params.get("length", 8))
    stride = int(params.get("stride", length))
    step = int(params.get("frame_step", 1))
    span = (length - 1) * step + 1
    for start in range(0, count - span + 1, stride):
        yield slice(start, start + span, step)


def _sized(frames: pl.DataFrame) -> pl.DataFrame:
    return frames.filter(pl.col("width").is_not_null() & pl.col("height").is_not_null())


def _windows(frames: pl.DataFrame, params: dict[str, Any]) -> Iterator[pl.DataFrame]:
    sized = _sized(frames)
    for span in _spans(sized.height, params):
        yield sized.slice(span.start, span.stop - span.start).gather_every(span.step)


def _by_frame(boxes: pl.DataFrame) -> dict[str, list[tuple]]:
    """Frame uid -> its boxes as ``(x1, y1, x2, y2, track_id)`` rows, in store order.

    Samples are built from these in plain Python: a sample holds a few boxes, and a polars call per
    sample costs more than the work itself."""
    by_frame: dict[str, list[tuple]] = {}
    for uid, *box in boxes.select("frame_uid", *BOX_COLUMNS).iter_rows():
        by_frame.setdefault(uid, []).append(tuple(box))
    return by_frame


def _renumber_rows(by_frame: dict[str, list[tuple]], frame_order: dict[str, int]) -> dict[int, int]:
    """Track id -> 1..N by first appearance (clip position, then x, then y)."""
    rows = [(position, box) for uid, position in frame_order.items() for box in by_frame.get(uid, ())]
    rows.sort(key=lambda r: (r[0], r[1][0], r[1][1]))
    return {tid: n for n, tid in enumerate(dict.fromkeys(box[4] for _, box in rows), start=1)}


def _renumber(boxes: pl.DataFrame, frame_order: dict[str, int]) -> dict[int, int]:
    return _renumber_rows(_by_frame(boxes), frame_order)


def _clip_images(window: Iterable[dict[str, Any]], view: str | None = None) -> list[Image]:
    return [
        Image(r["abs_path"], (r["width"], r["height"]), {"n": n, "view": view or ""})
        for n, r in enumerate(window, start=1)
    ]


def _frame_boxes_rows(
    uids: list[str], by_frame: dict[str, list[tuple]], ids: dict[int, int]
) -> dict[int, list[Box]]:
    return {n: boxes_of(by_frame.get(uid, ()), ids) for n, uid in enumerate(uids, start=1)}


def _frame_boxes(window: pl.DataFrame, boxes: pl.DataFrame, ids: dict[int, int]) -> dict[int, list[Box]]:
    return _frame_boxes_rows(window["frame_uid"].to_list(), _by_frame(boxes), ids)


def clip(source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]) -> Iterator[Draft]:
    """Tracking over a clip. ``given``: ``first`` (first frame's boxes and ids in the prompt), ``previous``
    (every frame but the last), ``none``. ``answer_frames``: ``all``, ``last`` or ``after_given``.
    ``only_given``: answer only the given ids (position prediction; ids that left are simply absent).
    ``turns`` > 1 chains consecutive clips into one conversation, each turn given the last frame of the
    previous one (long videos). Clips with nobody to answer are negatives (the builder keeps
    ``negative_share`` of the samples). Only videos are drawn from."""
    given_mode = params.get("given", "first")
    answer_frames = params.get("answer_frames", "after_given")
    only_given = bool(params.get("only_given", False))
    turns_per_draft = int(params.get("turns", 1))
    for seq, frames, boxes in source.sequence_batches(draws_for("clip", params)):
        by_frame = _by_frame(target_boxes(boxes).filter(pl.col("track_id").is_not_null()))
        rows = _sized(frames).to_dicts()
        windows = [rows[span] for span in _spans(len(rows), params)]
        for first in range(0, len(windows) - turns_per_draft + 1, turns_per_draft):
            group = windows[first : first + turns_per_draft]
            order: dict[str, int] = {}
            for w in group:
                for r in w:
                    order.setdefault(r["frame_uid"], len(order))
            ids = _renumber_rows(by_frame, order)
            turns = []
            for w in group:
                per_frame = _frame_boxes_rows([r["frame_uid"] for r in w], by_frame, ids)
                n_given = {"first": 1, "previous": len(w) - 1, "none": 0}[given_mode]
                given = {n: per_frame[n] for n in range(1, n_given + 1)}
                given_ids = {b.track_id for bs in given.values() for b in bs}
                wanted = {
                    "all": range(1, len(w) + 1),
                    "last": [len(w)],
                    "after_given": range(n_given + 1, len(w) + 1),
                }[answer_frames]
                answer = {
                    n: [b for b in per_frame[n] if not only_given or b.track_id in given_ids] for n in wanted
                }
                context = {
                    "n_frames": len(w),
                    "given": Answer.from_frames(given),
                    "given_frames": ", ".join(str(n) for n in given) or "none",
                    "last_frame": len(w),
                }
                turns.append(Turn(_clip_images(w), context, Answer.from_frames(answer)))
            key = f"{seq.uid}@{group[0][0]['frame_index']}"
            yield Draft(key, seq.dataset, turns, {"sequence": seq.uid})


def _views_of(scene: list, expression_views: list[str] | None, all_views: bool) -> list:
    by_view = {s.view: s for s in scene}
    chosen = [by_view[v] for v in expression_views if v in by_view] if expression_views else list(scene)
    return chosen if all_views else chosen[:1]


def referring(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """The people a sentence names, over a clip (``length`` 1 with ``single_image`` for grounding in one
    image). ``views = "all"`` answers per view under ``View <name>:`` (cross-view). The targets are the
    referents, whatever their category. A clip where the sentence names nobody is a negative sample."""
    all_views = params.get("views", "one") == "all"
    single_image = bool(params.get("single_image", False))
    for (dataset, split, name), scene in source.scenes(draws_for("referring", params)).items():
        expressions = source.expressions(dataset, split, name)
        if expressions.height == 0:
            continue
        if all_views and len(scene) < 2:
            continue
        referents = source.referents(expressions["expression_uid"])
        loaded = {}
        for expr in expressions.iter_rows(named=True):
            views = _views_of(scene, expr["views"], all_views)
            for seq in views:
                if seq.uid not in loaded:
                    frames = source.frames(seq.uid)
                    loaded[seq.uid] = (frames, gt_boxes(source.boxes(frames["frame_uid"])))
            named = referents.filter(pl.col("expression_uid") == expr["expression_uid"])
            first_frames = loaded[views[0].uid][0]
            for window in _windows(first_frames, params):
                indices = window["frame_index"].to_list()
                per_view, images, uids = {}, [], []
                for seq in views:
                    frames, _boxes = loaded[seq.uid]
                    w = frames.filter(pl.col("frame_index").is_in(indices)).sort("frame_index")
                    if w.height != len(indices):
                        break
                    per_view[seq.view] = w
                    images += _clip_images(w.iter_rows(named=True), seq.view)
                    uids += w["frame_uid"].to_list()
                else:
                    key = f"{expr['expression_uid']}@{indices[0]}"
                    hits = named.filter(pl.col("frame_uid").is_in(uids))
                    answer = _referred_answer(views, per_view, loaded, hits, single_image, all_views)
                    context = {"sentence": expr["sentence"], "n_frames": len(indices), "n_views": len(views)}
                    meta = {"expression": expr["expression_uid"], "sequences": [s.uid for s in views]}
                    yield Draft(key, dataset, [Turn(images, context, answer)], meta)


def _referred_answer(views, per_view, loaded, hits, single_image, all_views) -> Answer:
    chosen = hits.select("frame_uid", "track_id")
    boxes = pl.concat([loaded[s.uid][1] for s in views]).join(
        chosen, on=["frame_uid", "track_id"], how="semi"
    )
    order = {
        uid: k for k, uid in enumerate(u for s in views for u in per_view[s.view]["frame_uid"].to_list())
    }
    ids = _renumber(boxes, order)
    if single_image:
        return Answer.single_image(to_boxes(boxes))
    frames = {s.view: _frame_boxes(per_view[s.view], boxes, ids) for s in views}
    if all_views:
        return Answer.from_views(frames)
    return Answer.from_frames(frames[views[0].view])


def semantic(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Semantic MOT over a clip: boxes with ids, a caption per track present, the interactions between
    tracks present (in words, ``approaches``, where the store keeps the synset), and the clip's
    summary. Clips with nobody are negatives."""
    for seq, frames, boxes in source.sequence_batches(draws_for("semantic", params)):
        semantics = source.semantics([seq.uid])
        if semantics.height == 0:
            continue
        captions = {
            r["track_id"]: r["text"]
            for r in semantics.filter(pl.col("kind") == "track_caption").iter_rows(named=True)
        }
        relations = semantics.filter(pl.col("kind") == "interaction")
        summary = semantics.filter(pl.col("kind") == "summary")["text"].to_list()
        tracked = target_boxes(boxes).filter(pl.col("track_id").is_not_null())
        for window in _windows(frames, params):
            order = {uid: k for k, uid in enumerate(window["frame_uid"].to_list())}
            in_clip = tracked.filter(pl.col("frame_uid").is_in(list(order)))
            ids = _renumber(in_clip, order)
            answer = Answer.from_frames(_frame_boxes(window, in_clip, ids))
            answer.captions = {ids[t]: captions[t] for t in ids if t in captions}
            for r in relations.iter_rows(named=True):
                if r["track_id"] in ids and r["other_track_id"] in ids:
                    pair = (ids[r["track_id"]], ids[r["other_track_id"]])
                    answer.interactions.setdefault(pair, []).append(words_of(r["name"]))
            answer.summary = summary[0] if summary and ids else None
            key = f"{seq.uid}@{window['frame_index'][0]}"
            turn = Turn(_clip_images(window.iter_rows(named=True)), {"n_frames": window.height}, answer)
            yield Draft(key, seq.dataset, [turn], {"sequence": seq.uid})


def track_caption(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Describe one tracked person: the full frame and the person's box in, the track's caption out."""
    for seq, frames, boxes in source.sequence_batches(draws_for("track_caption", params)):
        captions = source.semantics([seq.uid]).filter(pl.col("kind") == "track_caption")
        if captions.height == 0:
            continue
        tracked = target_boxes(boxes).join(frames.select("frame_uid", "frame_index"), on="frame_uid")
        for row in captions.iter_rows(named=True):
            seen = tracked.filter(pl.col("track_id") == row["track_id"]).sort("frame_index")
            if seen.height == 0:
                continue
            key = f"{seq.uid}#track{row['track_id']}"
            pick = seen.row(rng_for(key).randrange(seen.height), named=True)
            frame = frames.filter(pl.col("frame_uid") == pick["frame_uid"]).row(0, named=True)
            if frame["width"] is None:
                continue
            target = Answer.single_image([Box(pick["x1"], pick["y1"], pick["x2"], pick["y2"])])
            image = Image(frame["abs_path"], (frame["width"], frame["height"]))
            yield Draft(key, seq.dataset, [Turn([image], {"target": target}, row["text"])])
