"""Person samplers over the ``identities`` table: ReID pairs, text-to-person retrieval, descriptions,
attribute questions and caption/image matching. Junk and distractor images are left out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random
from typing import Any

import polars as pl

from omnipt_data.answers import render_count, render_yes_no
from omnipt_data.build.draft import Draft, Image, Turn, balance_yes_no
from omnipt_data.build.source import BuildSource
from omnipt_data.readers.base import image_size


def _people(source: BuildSource) -> Iterator[tuple[str, pl.DataFrame]]:
    """(dataset, identity rows with absolute paths and sizes) for each dataset of the store."""
    for dataset in source.identity_datasets():
        rows = source.identities(dataset).filter(
            ~pl.col("junk").fill_null(False) & ~pl.col("distractor").fill_null(False)
        )
        paths = [source.image_path(dataset, p) for p in rows["image_path"].to_list()]
        rows = rows.with_columns(pl.Series("abs_path", paths))
        missing = rows["width"].is_null()
        if missing.any():
            sizes = [
                image_size(p) if m else (w, h)
                for p, m, w, h in zip(paths, missing, rows["width"], rows["height"], strict=True)
            ]
            rows = rows.with_columns(
                pl.Series("width", [s[0] for s in sizes], pl.Int32),
                pl.Series("height", [s[1] for s in sizes], pl.Int32),
            )
        yield dataset, rows.filter(pl.col("width").is_not_null())


def _image(row: dict[str, Any], n: int = 1) -> Image:
    return Image(row["abs_path"], (row["width"], row["height"]), {"n": n})


def reid_pair(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Two person images: the same person? Each image is paired with one positive (another image of the
    person, preferring another camera) or one negative, drawn by key; ``yes_share`` of the pairs are
    positives (a dataset with one image per person gives none)."""
    yes_share = float(params.get("yes_share", 0.5))
    for dataset, rows in _people(source):
        persons = rows.partition_by("person_uid", as_dict=True)
        uids = sorted(k[0] for k in persons)
        drafts = []
        for row in rows.iter_rows(named=True):
            rng = rng_for(row["image_uid"])
            same = persons[(row["person_uid"],)].filter(pl.col("image_uid") != row["image_uid"])
            positive = rng.random() < yes_share and same.height > 0
            if positive:
                other_cams = same.filter(pl.col("camera").ne_missing(row["camera"]))
                pool = other_cams if other_cams.height else same
                other = pool.row(rng.randrange(pool.height), named=True)
            else:
                if len(uids) < 2:
                    continue
                other_uid = row["person_uid"]
                while other_uid == row["person_uid"]:
                    other_uid = uids[rng.randrange(len(uids))]
                pool = persons[(other_uid,)]
                other = pool.row(rng.randrange(pool.height), named=True)
            images = [_image(row, 1), _image(other, 2)]
            drafts.append(Draft(row["image_uid"], dataset, [Turn(images, {}, render_yes_no(positive))]))
        yield from balance_yes_no(drafts, yes_share, rng_for(f"{dataset}#balance"))


def retrieval(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """A caption and ``candidates`` person images, one of them the described person: which one?"""
    count = int(params.get("candidates", 4))
    for dataset, rows in _people(source):
        described = rows.filter(pl.col("captions").list.len() > 0)
        persons = sorted(rows["person_uid"].unique().to_list())
        if len(persons) < count:
            continue
        first_image = rows.unique("person_uid", keep="first", maintain_order=True)
        by_person = {r["person_uid"]: r for r in first_image.iter_rows(named=True)}
        for row in described.iter_rows(named=True):
            rng = rng_for(row["image_uid"])
            others = [p for p in persons if p != row["person_uid"]]
            chosen = rng.sample(others, count - 1)
            slot = rng.randrange(count)
            chosen.insert(slot, row["person_uid"])
            images = [
                _image(row if p == row["person_uid"] else by_person[p], n) for n, p in enumerate(chosen, 1)
            ]
            caption = row["captions"][rng.randrange(len(row["captions"]))]
            context = {"caption": caption, "candidates": count}
            yield Draft(row["image_uid"], dataset, [Turn(images, context, render_count(slot + 1))])


def person_caption(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Describe the person in a crop: one of the image's captions, drawn by key."""
    for dataset, rows in _people(source):
        for row in rows.filter(pl.col("captions").list.len() > 0).iter_rows(named=True):
            caption = row["captions"][rng_for(row["image_uid"]).randrange(len(row["captions"]))]
            yield Draft(row["image_uid"], dataset, [Turn([_image(row)], {}, caption)])


def person_attribute(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """One attribute question per crop: ``What is the person's <name>?`` -> ``Answer: <value>``."""
    for dataset, rows in _people(source):
        for row in rows.filter(pl.col("attributes").list.len() > 0).iter_rows(named=True):
            attrs = sorted((a["name"], a["value"]) for a in row["attributes"])
            name, value = attrs[rng_for(row["image_uid"]).randrange(len(attrs))]
            context = {"attribute": name.replace("_", " ")}
            yield Draft(row["image_uid"], dataset, [Turn([_image(row)], context, f"Answer: {value}")])


def caption_match(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Image-text alignment: does this caption describe the person? ``yes_share`` of the pairs take the
    person's own caption, the others another person's."""
    yes_share = float(params.get("yes_share", 0.5))
    for dataset, rows in _people(source):
        described = rows.filter(pl.col("captions").list.len() > 0)
        if described["person_uid"].n_unique() < 2:
            continue
        pool = described.select("person_uid", "captions")
        for row in described.iter_rows(named=True):
            rng = rng_for(row["image_uid"])
            match = rng.random() < yes_share
            if match:
                captions = row["captions"]
            else:
                others = pool.filter(pl.col("person_uid") != row["person_uid"])
                captions = others.row(rng.randrange(others.height), named=True)["captions"]
            context = {"caption": captions[rng.randrange(len(captions))]}
            yield Draft(row["image_uid"], dataset, [Turn([_image(row)], context, render_yes_no(match))])
