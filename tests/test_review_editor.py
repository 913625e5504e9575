"""The demo's review step as a newcomer meets it: ``scripts/demo --review`` starts the project's local
Label Studio, pushes the predictions and prints the address and the login; a person opens the editor
(headless Chromium, driven through chromedriver), sees the model's boxes as regions, deletes one and
submits; ``review pull`` brings it back as a rejected box.

The predictions store is the demo's: frames pre-labelled from a folder (absolute image paths, no image
root), the model's boxes being the ground truth of a small synthetic clip.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from test_review import MODEL, WORLD, make_folder_predictions_store, prediction_result
from typer.testing import CliRunner

from omnipt_data.annotate.labelstudio import connect
from omnipt_data.annotate.server import LOGIN_FILE, stop_local_server
from omnipt_data.cli import app
from omnipt_data.console import make_console
from omnipt_data.convert import convert
from omnipt_data.demo import REVIEW_PROJECTS, Steps, review_step
from omnipt_data.store import Store
from omnipt_data.synth import synthesize

PROJECT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT / "test-artifacts"
CHROMIUM = Path(os.environ.get("OMNIPT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OMNIPT_CHROMEDRIVER", "/usr/bin/chromedriver"))
LOGIN_LINE = re.compile(
    r"^ {3}open (http://127\.0\.0\.1:\d+) and log in as (\S+) with password (\S+) \(kept in "
)
REGION = "[role=treeitem].lsf-tree__node_type_rectangleregion"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo's folder after pre-labelling: the clip's frames and the predictions store; the local
    Label Studio the review step starts in it is stopped at the end."""
    out = tmp_path_factory.mktemp("demo")
    synthesize(out / "world", WORLD, formats=("mot",))
    convert("mot", out / "world" / "mot", out / "gt", show_progress=False)
    make_folder_predictions_store(
        Store.open(out / "gt"), out / "new-clip" / "frames", out / "stores" / "predictions"
    )
    try:
        yield out
    finally:
        if (out / "labelstudio" / LOGIN_FILE).is_file():
            stop_local_server(out / "labelstudio")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through its chromedriver (both installed by scripts/install-browser if missing)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        subprocess.run([str(PROJECT / "scripts" / "install-browser")], check=True, timeout=900)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def review_demo(out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The demo's review step, printed as it is when piped to a file; returns its lines."""
    env = {k: os.environ.pop(k) for k in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY") if k in os.environ}
    try:
        capsys.readouterr()
        review_step(out, out / "stores" / "predictions", Steps(make_console()), start_server=True)
        return capsys.readouterr().out.splitlines()
    finally:
        os.environ.update(env)


def test_demo_review_opens_in_the_editor_and_a_deleted_box_comes_back_rejected(
    demo_out: Path, browser: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    lines = review_demo(demo_out, capsys)
    (login,) = [m for m in map(LOGIN_LINE.match, lines) if m]  # one unwrapped line, however long
    url, email, password = login.groups()
    frames_count = Store.open(demo_out / "stores" / "predictions").read("frames").height
    assert f"   {REVIEW_PROJECTS['boxes']!r} (boxes): {frames_count} new, 0 unchanged" in "\n".join(lines)
    assert any(
        line.endswith(f"stop it with scripts/labelstudio stop --data-dir {demo_out / 'labelstudio'}")
        for line in lines
    )
    saved = orjson.loads((demo_out / "labelstudio" / LOGIN_FILE).read_bytes())
    assert (saved["email"], saved["password"]) == (email, password)
    assert saved["api_key"] not in "\n".join(lines)
    assert (demo_out / "labelstudio" / LOGIN_FILE).stat().st_mode & 0o077 == 0

    conn = connect(url, saved["api_key"])
    (project,) = [p for p in conn.client.projects.list() if p.title == REVIEW_PROJECTS["boxes"]]
    tasks = list(conn.client.tasks.list(project=project.id, fields="all"))
    # The frame the reviewer opens: the one where the model saw the most people.
    task = max(tasks, key=lambda t: (len(prediction_result(t)), -t.id))
    predicted = sorted(r["id"] for r in prediction_result(task) if r["from_name"] == "box")
    assert len(predicted) >= 2

    browser.get(f"{url}/user/login")
    wait_for("the login form", lambda: browser.find_elements(By.NAME, "email"))
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for("the login", lambda: "/user/login" not in browser.current_url)
    browser.get(f"{url}/projects/{project.id}/data?task={task.id}")
    regions = wait_for(
        "the model's boxes as regions",
        lambda: (
            (found := browser.find_elements(By.CSS_SELECTOR, REGION))
            and len(found) == len(predicted)
            and found
        ),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "label-studio-editor.png"))
    regions[0].click()
    deleted = wait_for(
        "the selected region's details",
        lambda: [
            e.text
            for e in browser.find_elements(By.CSS_SELECTOR, ".lsf-detailed-region__head > span")
            if e.text in predicted
        ],
    )[0]
    browser.find_element(By.CSS_SELECTOR, "[aria-label='Delete selected region']").click()
    wait_for(
        "the region to go", lambda: len(browser.find_elements(By.CSS_SELECTOR, REGION)) == len(predicted) - 1
    )
    browser.find_element(By.CSS_SELECTOR, "[aria-label='Submit current annotation']").click()
    annotations = wait_for("the submitted annotation", lambda: conn.client.tasks.get(id=task.id).annotations)
    (annotation,) = annotations
    kept = sorted(r["id"] for r in annotation["result"] if r["from_name"] == "box")
    assert kept == [r for r in predicted if r != deleted]

    # What the demo printed: the pull with the server's address and the key kept beside its database.
    env = {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": saved["api_key"]}
    out = tmp_path / "reviewed"
    pulled = CliRunner().invoke(
        app, ["review", "pull", "--project", REVIEW_PROJECTS["boxes"], "--out", str(out), "-q"], env=env
    )
    assert pulled.exit_code == 0, pulled.output
    store = Store.open(out)
    review = store.manifest["review"]
    assert review["reviewers"] == [email]
    decisions = pl.read_parquet(out / review["decisions_file"]["path"])
    key = task.data["omnipt_key"]
    rejected = decisions.filter(pl.col("status") == "rejected")
    assert rejected.select("field", "item").rows() == [("box", f"{key}#{deleted}")]
    accepted = decisions.filter((pl.col("field") == "box") & (pl.col("status") == "accepted"))
    assert sorted(accepted["item"]) == [f"{key}#{r}" for r in kept]
    boxes = store.read("boxes")
    assert boxes.height == len(kept) and set(boxes["source"]) == {f"review:{email}"}
    assert int(deleted.removeprefix("t")) not in boxes["track_id"].to_list()
    assert store.read("frames")["image_path"].to_list() == [task.data["omnipt"]["frames"][0]["image_path"]]

    # The demo run again: the same server, nothing pushed twice, the review left alone.
    again = "\n".join(review_demo(demo_out, capsys))
    assert f"(boxes): 0 new, {frames_count - 1} unchanged, 1 reviewed tasks" in again
    assert store.manifest["review"]["predictions"][MODEL]["model"] == "tiny"
