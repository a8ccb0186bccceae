"""The studio's page in a real browser: Debian's chromium driven by Playwright for Python (never ``playwright
install``, which downloads a browser). Skipped, saying why, where chromium or playwright is missing.

The test opens the page of a ``neural-style-serve`` process on the tiny network, uploads a content image and two
styles, moves a blend slider, paints a region per style, starts a job, sees the preview change at least twice and
the finished image, downloads it, and takes a screenshot: into the test's folder, and also to the path in
``$NEURAL_STYLE_STUDIO_SCREENSHOT`` when set (that is how the README's picture is made, with
``$NEURAL_STYLE_STUDIO_NETWORK`` naming a real network: see ``_inputs``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from serve_helpers import png_bytes, server_process, tiny_network

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("NEURAL_STYLE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
]
SCREENSHOT_ENV = "NEURAL_STYLE_STUDIO_SCREENSHOT"
NETWORK_ENV = "NEURAL_STYLE_STUDIO_NETWORK"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _browser_or_skip() -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) is not installed")
    if not os.path.isfile(CHROMIUM) and shutil.which("chromium") is None:
        pytest.skip(f"no chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)")


def _photo(width: int, height: int) -> np.ndarray:
    """A smooth photo-like image: a sky gradient over a darker hill."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    sky = np.stack([90 + 100 * y, 140 + 80 * y, 230 - 40 * y], axis=-1)
    hill = (y > 0.6 + 0.15 * np.sin(6 * x)).astype(float)[..., None]
    return (sky * (1 - hill) + np.array([60, 120, 50]) * hill).clip(0, 255)


def _pattern(seed: int, size: int = 48) -> np.ndarray:
    blocks = np.random.default_rng(seed).integers(0, 256, (6, 6, 3))
    return np.kron(blocks, np.ones((size // 6, size // 6, 1)))


def _inputs(tmp_path: Path, folder: Path) -> tuple[Path, list[Path], Path, int]:
    """The content, two styles, the network and the width: synthetic images and the tiny network at 64 px, or, when
    ``$NEURAL_STYLE_STUDIO_NETWORK`` names a network, the README's example images at 192 px (the second style is the
    first turned and its colours swapped)."""
    if os.environ.get(NETWORK_ENV):
        with Image.open(EXAMPLES / "style.png") as style:
            turned = np.asarray(style.convert("RGB").transpose(Image.Transpose.ROTATE_90))[..., ::-1]
        (folder / "turned.png").write_bytes(png_bytes(turned))
        styles = [EXAMPLES / "style.png", folder / "turned.png"]
        return EXAMPLES / "content.png", styles, Path(os.environ[NETWORK_ENV]), 192
    (folder / "photo.png").write_bytes(png_bytes(_photo(64, 48)))
    (folder / "red.png").write_bytes(png_bytes(_pattern(1)))
    (folder / "blue.png").write_bytes(png_bytes(_pattern(2)))
    return folder / "photo.png", [folder / "red.png", folder / "blue.png"], tiny_network(tmp_path / "vgg.mat"), 64


def _wait_until(condition: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the page did not get there")
        time.sleep(0.05)


def test_the_page_runs_a_job_end_to_end(tmp_path: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    content, styles, network, width = _inputs(tmp_path, inputs)
    with Image.open(content) as opened:
        height = opened.height * width // opened.width
        mask_width = min(512, opened.width)  # the page paints masks at the content's size, at most 512 px wide
    extra = ["--preview_seconds=0.2"]
    with server_process(tmp_path, network, tmp_path / "data", extra) as server, sync_playwright() as playwright:
        executable = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            failed_requests: list[str] = []
            page.on(
                "requestfailed",
                lambda request: (
                    None  # the page closes a job's event stream at its last event, racing the server
                    if request.url.endswith("/events") and request.failure == "net::ERR_ABORTED"
                    else failed_requests.append(f"{request.url}: {request.failure}")
                ),
            )
            page.goto(server.url + "/")
            page.wait_for_selector("body[data-ready=true]")
            page.set_input_files("#content-file", str(content))
            page.set_input_files("#style-files", [str(path) for path in styles])
            page.wait_for_selector("#blend-1")
            # the second style's slider, by keyboard: 50 -> 30, so the blend is 50:30
            page.focus("#blend-1")
            for _ in range(20):
                page.keyboard.press("ArrowLeft")
            assert page.input_value("#blend-1") == "30"
            assert page.text_content("#blend-0-value") == "63%"
            # a region per style: the left part with the first brush, the right part with the second
            canvas = page.locator("#paint-canvas")
            box = canvas.bounding_box()
            assert box is not None
            page.fill("#brush-size", str(max(2, mask_width // 6)))  # in the mask's pixels
            for brush, x0, x1 in (("#brush-0", 0.1, 0.25), ("#brush-1", 0.75, 0.9)):
                page.check(brush)
                for y in (0.2, 0.5, 0.8):
                    page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y * box["height"])
                    page.mouse.down()
                    page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y * box["height"], steps=6)
                    page.mouse.up()
            page.fill("#setting-width", str(width))
            page.fill("#setting-iterations", "60")
            page.fill("#setting-seed", "3")
            page.click("summary")  # all settings
            page.fill("#setting-initial_noiseblend", "0")  # from the content image
            page.fill("#setting-tv_weight", "1")
            page.click("summary")
            page.click("#start")
            _wait_until(lambda: int(page.get_attribute("#preview", "data-loads") or 0) >= 2)  # no eval: the CSP
            page.wait_for_selector("#download:not([hidden])", timeout=300_000)
            status = page.text_content("#status") or ""
            assert ": done" in status, status
            with page.expect_download() as download_info:
                page.click("#download")
            downloaded = tmp_path / "downloaded.png"
            download_info.value.save_as(downloaded)
            page.wait_for_selector("#gallery-list li")
            page.evaluate("document.querySelector('#curve').scrollIntoView()")
            screenshot = tmp_path / "studio.png"
            page.screenshot(path=str(screenshot), full_page=True)
            loads = int(page.get_attribute("#preview", "data-loads") or 0)
        finally:
            browser.close()
        jobs = httpx.get(server.url + "/jobs").json()
    assert not failed_requests, failed_requests
    assert loads >= 3  # at least two previews while it ran, then the finished image
    (job,) = jobs
    assert job["state"] == "done" and job["iteration"] == 60
    assert job["settings"]["style_blend_weights"] == "50,30"
    assert job["settings"]["iterations"] == "60" and job["settings"]["seed"] == "3"
    assert job["settings"]["initial_noiseblend"] == "0" and job["settings"]["width"] == str(width)
    assert job["settings"]["tv_weight"] == "1"
    assert len(job["inputs"]["masks"]) == 2
    masks = [
        np.asarray(Image.open(tmp_path / "data" / "jobs" / job["id"] / "inputs" / m)) for m in job["inputs"]["masks"]
    ]
    left, right = (mask.reshape(mask.shape[0], mask.shape[1], -1)[..., 0] > 127 for mask in masks)
    assert left.shape[1] / left.shape[0] == pytest.approx(width / height, rel=0.02)  # the content's aspect
    half = left.shape[1] // 2
    assert left[:, :half].any() and not left[:, half:].any()  # the first style's region is on the left only
    assert right[:, half:].any() and not right[:, :half].any()
    result = tmp_path / "data" / "jobs" / job["id"] / "out" / "result.png"
    assert downloaded.read_bytes() == result.read_bytes()
    assert Image.open(downloaded).size == (width, height)
    assert Image.open(screenshot).size[0] == 1280
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        shutil.copyfile(screenshot, target)
