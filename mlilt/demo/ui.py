"""The demo's Gradio app: text and picture search over loaded languages, served safely.

The app listens on 127.0.0.1 (``--host``, ``--share`` only when asked), sends no analytics, serves only the
pictures a search returns (:class:`ResultCopies`: never another file of the gallery's folder, a ``.env`` beside
the pictures stays private), and checks uploads (size, pixel count, readability), deleting a rejected one at
once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlilt.constants import METRICS_NAME
from mlilt.demo.routing import LanguagePicker
from mlilt.demo.search import Hit, LanguageModels
from mlilt.demo.uploads import MAX_UPLOAD_BYTES, UploadRejected, checked_image_class

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is ever imported

EXAMPLES = [  # sw dog, sw fish, yo fish, am dog, ha cat, zu banana, en sun, fr dog
    ("mbwa", "auto"),
    ("samaki", "auto"),
    ("Ẹja", "auto"),
    ("ውሻ", "auto"),
    ("kyanwa", "auto"),
    ("ubhanana", "auto"),
    ("sun", "auto"),
    ("chien", "auto"),
]
NO_BASE = (
    "**base** needs a reference: this run folder has no `reference-frozen/` (it was trained with "
    "`--no-reference`). Train without that flag to compare adapted against base."
)


class ResultCopies:
    """The only files the app serves: the pictures its searches return, each linked (or copied, across file
    systems) into a private temporary folder the first time it is shown; Gradio takes it from there into its own
    cache. So no gallery path is allowed up front: Gradio checks every served file against each allowed path in
    turn, which for a gallery of 100,000 pictures listed one by one took seconds per result picture."""

    def __init__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="mlilt-demo-")  # removed with the app (or at exit)
        self._copies: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        if path not in self._copies:
            target = Path(self._folder.name) / hashlib.sha256(path.encode()).hexdigest()[:16] / Path(path).name
            target.parent.mkdir(exist_ok=True)
            try:
                os.link(path, target)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(path, target)
            self._copies[path] = str(target)
        return self._copies[path]


def recall_note(languages: Sequence[LanguageModels]) -> str:
    """Each loaded adapter's test recall from its run folder, the protocol named (empty when not recorded)."""
    notes = []
    for lm in languages:
        path = Path(lm.source) / METRICS_NAME
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
            strict = metrics["test"]["text_to_image_R@1"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        other = (metrics.get("test_clip_benchmark") or {}).get("text_to_image_R@1")
        also = f", {other:.1f} under CLIP_benchmark's protocol" if other is not None else ""
        notes.append(f"{lm.lang}: test text→image R@1 {strict:.1f} (ties count against the model{also})")
    return "Held-out recall: " + "; ".join(notes) + "." if notes else ""


def build_demo(languages: Sequence[LanguageModels], title_note: str = ""):
    """The Gradio Blocks app over loaded languages (see :func:`mlilt.demo.search.load_language`)."""
    import gradio as gr  # optional heavy dependency (the demo extra; seconds to import)

    by_lang = {lm.lang: lm for lm in languages}
    picker = LanguagePicker(list(by_lang))
    has_base = any(lm.base for lm in languages)

    def choose(choice: str, text: str = "") -> tuple[LanguageModels, str]:
        if choice in by_lang:
            return by_lang[choice], "chosen"
        if not text:
            return languages[0], "first adapter (a picture has no language)"
        lang, how = picker.pick(text)
        return by_lang[lang], how

    served = ResultCopies()

    def gallery_value(hits: list[Hit]):
        return [(served(h.path), h.label) for h in hits]

    def base_results(lm: LanguageModels, compare: bool, run) -> tuple[list, str]:
        if not compare:
            return [], ""
        if lm.base is None:
            return [], "\n\n" + NO_BASE
        return gallery_value(run(lm.base)), ""

    def text_search(query: str, choice: str, k: int, compare: bool):
        query = (query or "").strip()
        if not query:
            gr.Warning("Type a query first.")
            return "Type a query first.", [], []
        lm, how = choose(choice, query)
        hits = lm.adapted.search_text(query, int(k))
        base, note = base_results(lm, compare, lambda s: s.search_text(query, int(k)))
        status = f"Query **{query}** -> adapter **{lm.lang}** ({how}); top {len(hits)} of {len(lm.adapted.images)}."
        return status + note, gallery_value(hits), base

    def image_search(image, choice: str, k: int, compare: bool):
        if isinstance(image, UploadRejected):
            gr.Warning(image.reason)
            return f"Upload rejected: {image.reason}", [], [], ""
        if image is None:
            gr.Warning("Upload a picture first.")
            return "Upload a picture first.", [], [], ""
        lm, how = choose(choice)
        hits = lm.adapted.search_image(image, int(k))
        base, note = base_results(lm, compare, lambda s: s.search_image(image, int(k)))
        captions = lm.adapted.caption_image(image, 5)
        table = "\n".join(f"| {c.label} | {c.score:.3f} |" for c in captions)
        caption_md = (
            f"**Nearest {lm.lang} captions**\n\n| caption | score |\n|---|---:|\n{table}"
            if captions
            else f"No caption set for {lm.lang}."
        )
        status = f"Picture search with adapter **{lm.lang}** ({how}); top {len(hits)} of {len(lm.adapted.images)}."
        return status + note, gallery_value(hits), base, caption_md

    choices = ["auto", *by_lang]
    with gr.Blocks(title="mlilt cross-lingual image search", analytics_enabled=False) as demo:
        gr.Markdown(
            "# mlilt: cross-lingual image search\nSearch the gallery with words in any language or with "
            f"a picture. Languages loaded: {', '.join(by_lang)}. {recall_note(languages)} {title_note}"
        )
        with gr.Row():
            query = gr.Textbox(label="Text query", placeholder="e.g. mbwa", elem_id="query", scale=3)
            lang = gr.Dropdown(choices, value="auto", label="Language / adapter", elem_id="lang", scale=1)
            k = gr.Slider(1, 32, value=8, step=1, label="Results", elem_id="k", scale=1)
            compare = gr.Checkbox(value=has_base, label="Compare with base", elem_id="compare", scale=1)
        with gr.Row():
            search = gr.Button("Search", variant="primary", elem_id="search")
        gr.Examples([list(e) for e in EXAMPLES], inputs=[query, lang], label="Examples (one click, then Search)")
        with gr.Row():
            upload = checked_image_class()(
                type="pil", label="Or search by picture", elem_id="upload", height=200, sources=["upload", "clipboard"]
            )
            with gr.Column():
                image_search_btn = gr.Button("Search by picture", elem_id="image-search")
                captions = gr.Markdown(elem_id="captions")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            adapted = gr.Gallery(label="adapted", elem_id="results", columns=4, height="auto")
            base = gr.Gallery(label="base (frozen reference)", elem_id="results-base", columns=4, height="auto")
        search.click(text_search, [query, lang, k, compare], [status, adapted, base])
        query.submit(text_search, [query, lang, k, compare], [status, adapted, base])
        image_search_btn.click(image_search, [upload, lang, k, compare], [status, adapted, base, captions])
    return demo


def launch(demo, host: str = "127.0.0.1", port: int | None = None, share: bool = False, **kw):
    """Serve the app: only the pictures searches return are served, uploads are capped, nothing is shared unless
    asked."""
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=[],  # nothing from disk: results go through ResultCopies and Gradio's cache
        max_file_size=MAX_UPLOAD_BYTES,
        **kw,
    )
