"""``mlilt demo``: the real Gradio app, driven in real headless Chromium, shows what the library computes.

Needs Debian's ``chromium`` (apt) and Python ``playwright`` (pip; its own browsers are never installed).
Tiny towers and a six-picture gallery keep it fast; the expected pictures are the library's own
exact-search ordering for the same query, so the test checks that the UI shows what the library says.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mlilt.demo.gallery import folder_gallery
from mlilt.demo.routing import LanguagePicker
from mlilt.demo.search import load_language
from mlilt.demo.ui import NO_BASE, build_demo, launch
from mlilt.demo.uploads import check_upload
from mlilt.hub.adapter_files import save_adapter

from helpers import draw_picture, trained_model

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PICTURES = [
    ("red", "circle"),
    ("green", "square"),
    ("blue", "triangle"),
    ("yellow", "bar"),
    ("black", "circle"),
    ("purple", "square"),
]
CAPTIONS = ["mbwa paka ndege", "rangi nyekundu", "red circle", "blue triangle"]


def _save(assets, folder: Path, method: str, seed: int) -> None:
    save_adapter(trained_model(assets, seed=seed, method=method), folder, {"lang": "sw"})


@pytest.fixture(scope="module")
def setup(tiny_assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    (root / "gallery").mkdir()
    for colour, shape in PICTURES:
        draw_picture(colour, shape).save(root / "gallery" / f"{colour}-{shape}.png")
    _save(tiny_assets, root / "run", "adapters", seed=1)
    _save(tiny_assets, root / "run" / "reference-frozen", "frozen", seed=2)
    _save(tiny_assets, root / "run-no-ref", "layernorm", seed=3)
    gallery = folder_gallery(root / "gallery")
    logs: list[str] = []
    setup = {"root": root, "gallery": gallery}
    return setup | {"lm": _load(setup, "run", log=logs.append), "logs": logs}


def _load(setup: dict, run: str, captions: list[str] = CAPTIONS, log=lambda _: None):
    """One language of the demo from a run folder of the fixture, indexed through the fixture's feature cache."""
    return load_language(
        str(setup["root"] / run),
        setup["gallery"],
        "exact",
        captions=captions,
        cache_root=setup["root"] / "features",
        progress=False,
        log=log,
    )


def test_index_reports_cache_and_reuses_it(setup):
    assert any("6 computed" in line for line in setup["logs"])  # first indexing computes every picture
    logs: list[str] = []
    _load(setup, "run", log=logs.append)
    assert len(logs) == 2 and all("6 cached, 0 computed" in line for line in logs)  # adapted and base


def test_language_picker_and_upload_checks(tmp_path):
    picker = LanguagePicker(["sw", "yo", "am"])
    assert picker.pick("mbwa anayekimbia")[0] == "sw"
    assert picker.pick("ውሻ") == ("am", "Ethiopic script")
    assert picker.pick("Ọ̀gẹ̀dẹ̀ pupa")[0] == "yo"
    assert LanguagePicker(["zu"]).pick("anything") == ("zu", "the only adapter")
    text = tmp_path / "not-a-picture.png"
    text.write_text("hello")
    assert "not a picture" in check_upload(text)
    draw_picture("red", "bar").save(tmp_path / "ok.png")
    assert check_upload(tmp_path / "ok.png") is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def page(setup):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium chromium-driver")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    no_ref = _load(setup, "run-no-ref")
    no_ref.lang = "yo"  # a second language, so the picker has a choice
    demo = build_demo([setup["lm"], no_ref])
    port = _free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            tab = browser.new_page(viewport={"width": 1200, "height": 1400})
            tab.goto(f"http://127.0.0.1:{port}/")
            tab.wait_for_selector("#query textarea", timeout=30_000)
            yield tab
            browser.close()
    finally:
        demo.close()


def _result_files(page, elem: str, count: int) -> list[str]:
    selector = f"#{elem} img"
    page.wait_for_function(f"document.querySelectorAll('{selector}').length >= {count}", timeout=30_000)
    return [Path(src.split("?")[0]).name for src in page.eval_on_selector_all(selector, "els => els.map(e => e.src)")]


@pytest.mark.browser
def test_swahili_text_query_shows_the_library_ranking(page, setup):
    expected = [Path(h.path).name for h in setup["lm"].adapted.search_text("rangi nyekundu", 3)]
    expected_base = [Path(h.path).name for h in setup["lm"].base.search_text("rangi nyekundu", 3)]
    page.fill("#query textarea", "rangi nyekundu")
    page.locator("#k input[type=number]").fill("3")
    page.locator("#k input[type=number]").press("Enter")
    page.click("#search")
    page.wait_for_function("document.querySelector('#status').innerText.includes('adapter')", timeout=30_000)
    assert "sw" in page.inner_text("#status")
    assert _result_files(page, "results", 3)[:3] == expected
    assert _result_files(page, "results-base", 3)[:3] == expected_base
    assert expected[0].removesuffix(".png") in page.inner_text("#results")
    # the pictures really arrive (served from the app's copies, not from the gallery folder)
    page.wait_for_function(
        "[...document.querySelectorAll('#results img')].every(e => e.complete && e.naturalWidth > 0)", timeout=30_000
    )


@pytest.mark.browser
def test_image_upload_finds_the_same_picture(page, setup):
    picture = setup["root"] / "gallery" / "blue-triangle.png"
    page.locator("#upload input[type=file]").set_input_files(str(picture))
    page.wait_for_selector("#upload img", timeout=30_000)
    page.click("#image-search")
    page.wait_for_function("document.querySelector('#captions').innerText.includes('caption')", timeout=30_000)
    assert _result_files(page, "results", 1)[0] == "blue-triangle.png"
    assert any(c in page.inner_text("#captions") for c in CAPTIONS)


@pytest.mark.browser
def test_non_picture_upload_gets_a_message(page, setup, tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is text, not a picture")
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():  # the previous test left a picture in the upload box
        clear.first.click()
    page.locator("#upload input[type=file]").set_input_files(str(bogus))
    page.wait_for_timeout(500)
    page.click("#image-search")
    page.wait_for_function("document.querySelector('#status').innerText.includes('rejected')", timeout=30_000)
    assert "not a picture" in page.inner_text("#status")


def test_base_needs_a_reference(setup):
    demo_lm = _load(setup, "run-no-ref", captions=[])
    assert demo_lm.base is None and "reference-frozen" in NO_BASE
