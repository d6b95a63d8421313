"""``mlilt demo``: a Gradio app that searches a gallery of pictures by text in any language, or by a picture.

The gallery (the Emoji-CLDR pictures, or any folder) is embedded once: the frozen vision tower's
features come from the feature cache (:mod:`mlilt.features`, keyed by picture content, so
re-indexing computes only new or edited pictures), then each model's image head maps them into
its space and an :class:`~mlilt.search.EmbeddingIndex` holds them.

Every ``--adapter`` is one language. "adapted" is the trained adapter; "base" is the ``frozen``
reference kept in the run folder's ``reference-frozen/`` (heads only, same towers, same data):
the base towers alone have no trained heads, so nothing else can stand for "no adaptation". A run
trained with ``--no-reference`` has no base; the app says so.

The app listens on 127.0.0.1 (``--host``, ``--share`` only when asked), sends no analytics,
serves files only from the gallery folder, and checks uploads (size, pixel count, readability).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlilt.constants import ADAPTER_CONFIG_NAME, REFERENCE_DIR

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is ever imported

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
MAX_UPLOAD_BYTES = 10 * 2**20
MAX_UPLOAD_PIXELS = 40_000_000
ETHIOPIC = re.compile(r"[\u1200-\u139f\u2d80-\u2ddf\uab00-\uab2f]")
EXAMPLES = [  # sw dog, sw fish, yo fish, am dog, ha cat, zu banana, en sun, fr dog
    ("mbwa", "auto"), ("samaki", "auto"), ("Ẹja", "auto"), ("ውሻ", "auto"), ("kyanwa", "auto"),
    ("ubhanana", "auto"), ("sun", "auto"), ("chien", "auto"),
]
NO_BASE = ("**base** needs a reference: this run folder has no `reference-frozen/` (it was trained with "
           "`--no-reference`). Train without that flag to compare adapted against base.")


@dataclass
class Gallery:
    """The pictures searched: absolute paths under ``root``, a label each, and Emoji-CLDR ids when known."""

    root: Path
    paths: list[str]
    labels: list[str]
    image_ids: list[str] | None = None


def emoji_gallery() -> Gallery:
    """Every Emoji-CLDR picture (built into the cache on first use), labelled with its English name."""
    from mlilt.data.emoji_cldr import build_emoji_cldr, load_manifest

    root = build_emoji_cldr()
    pictures = load_manifest()["pictures"]
    return Gallery(root / "images", [str(root / p["file"]) for p in pictures], [p["english_name"] for p in pictures],
                   [p["image_id"] for p in pictures])


def folder_gallery(folder: str | Path) -> Gallery:
    """Every picture under ``folder`` (recursively, by suffix), labelled with its relative path."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no image folder at {folder}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"{folder} holds no pictures ({', '.join(IMAGE_SUFFIXES)})")
    return Gallery(root, [str(p) for p in paths], [str(p.relative_to(root)) for p in paths])


def emoji_names(lang: str) -> dict[str, str]:
    """Emoji-CLDR picture id -> short name in ``lang`` (empty when the language or CLDR is missing)."""
    from mlilt.data.emoji_cldr import load_emoji_cldr

    try:
        return {r.image_id: r.caption for r in load_emoji_cldr(lang, names_only=True)}
    except (ValueError, OSError):
        return {}


@dataclass
class Hit:
    """One result: a picture (or a caption) and its cosine score."""

    path: str | None
    label: str
    score: float


@dataclass
class Searcher:
    """One model with its gallery embeddings; captions for image-to-caption are embedded on first use.

    Args:
        name: Shown in the UI (``sw adapted``, ``sw base``).
        model: A :class:`~mlilt.model.DualEncoder`.
        gallery: The pictures indexed.
        images: Their embeddings in this model's space.
        captions: The caption set searched for an uploaded picture (e.g. Emoji-CLDR names in the language).
        names: Picture id -> local name, added to result labels.
    """

    name: str
    model: object
    gallery: Gallery
    images: object
    captions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def label(self, position: int, score: float) -> str:
        english = self.gallery.labels[position]
        ids = self.gallery.image_ids
        local = self.names.get(ids[position]) if ids else None
        return f"{score:.3f} · {local} ({english})" if local else f"{score:.3f} · {english}"

    def _hits(self, positions: Sequence[int], scores: Sequence[float]) -> list[Hit]:
        return [Hit(self.gallery.paths[p], self.label(p, float(s)), float(s)) for p, s in zip(positions, scores)]

    def search_text(self, text: str, k: int = 8) -> list[Hit]:
        """Pictures nearest to a text query."""
        return self._hits(*self.images.search(self.model.embed_texts([text])[0].numpy(), k))

    def search_image(self, image, k: int = 8) -> list[Hit]:
        """Pictures nearest to a PIL picture (image-to-image through the embeddings)."""
        return self._hits(*self.images.search(self.model.embed_images([image])[0].numpy(), k))

    def caption_image(self, image, k: int = 5) -> list[Hit]:
        """Captions nearest to a PIL picture (empty when there is no caption set)."""
        if not self.captions:
            return []
        ids, scores = self._caption_index.search(self.model.embed_images([image])[0].numpy(), k)
        return [Hit(None, self.captions[i], float(s)) for i, s in zip(ids, scores)]

    @functools.cached_property
    def _caption_index(self):
        from mlilt.search import EmbeddingIndex

        index = EmbeddingIndex(self.model.config.embed_dim, backend="exact")
        index.add(self.model.embed_texts(self.captions).numpy())
        return index


def index_gallery(model, gallery: Gallery, backend: str = "auto", cache_root: Path | None = None,
                  progress: bool = True):
    """Embed a gallery with a model: cached frozen features -> image head -> :class:`EmbeddingIndex`.

    Returns:
        ``(index, stats)``; ``stats`` counts feature-cache hits and misses (``None`` when the
        vision tower is trained, so its features cannot come from the cache).
    """
    import torch

    from mlilt.features import FeatureStore, image_features, open_rgb
    from mlilt.search import EmbeddingIndex

    stats = None
    with torch.no_grad():
        if model.vision_frozen:
            store = FeatureStore(model.vision, "plain", root=cache_root)
            features, stats = image_features(model.vision, gallery.paths, store=store, progress=progress)
            embeddings = model.embed_image_features(features.to(model.logit_scale.device)).cpu()
        else:
            embeddings = model.embed_images([open_rgb(p) for p in gallery.paths])
    index = EmbeddingIndex(model.config.embed_dim, backend=backend)
    index.add(embeddings.numpy())
    return index, stats


@dataclass
class LanguageModels:
    """One language: the adapted searcher and, when the run holds a reference, the base one."""

    lang: str
    source: str
    adapted: Searcher
    base: Searcher | None = None


def adapter_lang(folder: Path, model=None) -> str:
    """The language an adapter was trained for: ``adapter_config.json``'s ``lang`` (or the model's)."""
    config = Path(folder) / ADAPTER_CONFIG_NAME
    if config.is_file():
        lang = json.loads(config.read_text(encoding="utf-8")).get("lang")
        if lang:
            return lang
    return getattr(model, "lang", None) or "?"


def load_language(spec: str, gallery: Gallery, backend: str = "auto", captions: list[str] | None = None,
                  cache_root: Path | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> LanguageModels:
    """Load one ``--adapter`` (a run/adapter folder or anything :func:`mlilt.load` accepts) and index the gallery.

    Args:
        spec: ``PATH_OR_ID`` or ``LANG=PATH_OR_ID`` (to name the language when the config has none).
        gallery: The pictures to index.
        backend: Search backend (``exact``, ``faiss``, ``auto``).
        captions: Caption set for image-to-caption; default the Emoji-CLDR names of the language.
        cache_root: Feature-cache folder (default the mlilt cache).
        progress: Show a progress bar while features are computed.
        log: Where index statistics are reported.
    """
    import mlilt

    match = re.fullmatch(r"([a-z]{2,3}(?:_[A-Za-z]{4})?)=(.+)", spec)
    forced, source = (match.group(1), match.group(2)) if match else (None, spec)
    model = mlilt.load(source).eval()
    lang = forced or adapter_lang(Path(source), model)
    names = emoji_names(lang)
    captions = list(dict.fromkeys(names.values())) if captions is None else captions
    searchers = []
    for kind, m in [("adapted", model), ("base", _load_reference(Path(source)))]:
        if m is None:
            continue
        index, stats = index_gallery(m, gallery, backend, cache_root, progress)
        cache = f"feature cache: {stats}" if stats else "vision tower trained: features computed"
        log(f"mlilt demo: {lang} {kind}: {len(index)} pictures indexed ({cache}; search: {index.backend})")
        searchers.append(Searcher(f"{lang} {kind}", m, gallery, index, captions, names))
    return LanguageModels(lang, source, searchers[0], searchers[1] if len(searchers) > 1 else None)


def _load_reference(folder: Path):
    import mlilt

    reference = folder / REFERENCE_DIR
    return mlilt.load(reference).eval() if (reference / ADAPTER_CONFIG_NAME).is_file() else None


class LanguagePicker:
    """Picks the adapter for a query's language, offline.

    Ethiopic script -> Amharic (``am``, or ``ti`` when only that is loaded); otherwise ``lingua``
    (``lingua-language-detector``, which ships its models) restricted to the loaded languages plus
    English. lingua covers Swahili, Yoruba, Zulu, Somali, Xhosa, Shona and 70 more, not Amharic or
    Hausa; a query in a language it cannot tell falls back to the first adapter, and the UI says so.
    """

    def __init__(self, langs: Sequence[str]):
        self.langs = list(langs)
        self._detector, self._codes = None, {}
        if len(self.langs) < 2:
            return
        try:
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
        except ImportError:
            return
        for code in [*self.langs, "en"]:
            iso = getattr(IsoCode639_1, code.split("_")[0].upper(), None)
            if iso is not None:
                self._codes[Language.from_iso_code_639_1(iso)] = code
        if len(self._codes) >= 2:
            self._detector = LanguageDetectorBuilder.from_languages(*self._codes).build()

    def pick(self, text: str) -> tuple[str, str]:
        """``(language, how)``: the adapter's language and a short reason for the UI."""
        if len(self.langs) == 1:
            return self.langs[0], "the only adapter"
        if ETHIOPIC.search(text):
            ethiopic = [code for code in self.langs if code.split("_")[0] in ("am", "ti")]
            if ethiopic:
                return ethiopic[0], "Ethiopic script"
        found = self._detector.detect_language_of(text) if self._detector else None
        lang = self._codes.get(found)
        if lang in self.langs:
            return lang, "detected"
        return self.langs[0], f"language not recognised among {', '.join(self.langs)}: first adapter"


class UploadRejected:
    """What a checked image upload becomes when it is not a usable picture (the reason is shown in the UI)."""

    def __init__(self, reason: str):
        self.reason = reason


def check_upload(path: str | Path) -> str | None:
    """Why an uploaded file cannot be searched with (too big, too many pixels, not a picture), or ``None``."""
    from PIL import Image, UnidentifiedImageError

    size = Path(path).stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return f"That file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB."
    try:
        with Image.open(path) as image:
            pixels = image.width * image.height
            if pixels > MAX_UPLOAD_PIXELS:
                return f"That picture has {pixels / 1e6:.0f} megapixels; the limit is {MAX_UPLOAD_PIXELS // 10**6}."
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "That file is not a picture this app can read (PNG, JPEG, WebP, GIF or BMP)."
    return None


@functools.cache
def _checked_image_class():
    import gradio as gr

    class CheckedImage(gr.Image):
        """``gr.Image`` (type ``pil``) that turns unusable uploads into :class:`UploadRejected`."""

        is_template = True  # rendered by the frontend's own Image component

        def preprocess(self, payload):
            if payload is not None and payload.path:
                reason = check_upload(payload.path)
                if reason:
                    return UploadRejected(reason)
            return super().preprocess(payload)

    return CheckedImage


def build_demo(languages: Sequence[LanguageModels], title_note: str = ""):
    """The Gradio Blocks app over loaded languages (see :func:`load_language`)."""
    import gradio as gr

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

    def gallery_value(hits: list[Hit]):
        return [(h.path, h.label) for h in hits]

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
        image = image.convert("RGB")
        lm, how = choose(choice)
        hits = lm.adapted.search_image(image, int(k))
        base, note = base_results(lm, compare, lambda s: s.search_image(image, int(k)))
        captions = lm.adapted.caption_image(image, 5)
        table = "\n".join(f"| {c.label} | {c.score:.3f} |" for c in captions)
        caption_md = (f"**Nearest {lm.lang} captions**\n\n| caption | score |\n|---|---:|\n{table}" if captions
                      else f"No caption set for {lm.lang}.")
        status = f"Picture search with adapter **{lm.lang}** ({how}); top {len(hits)} of {len(lm.adapted.images)}."
        return status + note, gallery_value(hits), base, caption_md

    choices = ["auto", *by_lang]
    with gr.Blocks(title="mlilt cross-lingual image search", analytics_enabled=False) as demo:
        gr.Markdown("# mlilt: cross-lingual image search\nSearch the gallery with words in any language or with "
                    f"a picture. Languages loaded: {', '.join(by_lang)}. {title_note}")
        with gr.Row():
            query = gr.Textbox(label="Text query", placeholder="e.g. mbwa", elem_id="query", scale=3)
            lang = gr.Dropdown(choices, value="auto", label="Language / adapter", elem_id="lang", scale=1)
            k = gr.Slider(1, 32, value=8, step=1, label="Results", elem_id="k", scale=1)
            compare = gr.Checkbox(value=has_base, label="Compare with base", elem_id="compare", scale=1)
        with gr.Row():
            search = gr.Button("Search", variant="primary", elem_id="search")
        gr.Examples([list(e) for e in EXAMPLES], inputs=[query, lang], label="Examples (one click, then Search)")
        with gr.Row():
            upload = _checked_image_class()(type="pil", label="Or search by picture", elem_id="upload", height=200,
                                            sources=["upload", "clipboard"])
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


def launch(demo, gallery: Gallery, host: str = "127.0.0.1", port: int | None = None, share: bool = False, **kw):
    """Serve the app: only the gallery folder is served, uploads are capped, nothing is shared unless asked."""
    return demo.launch(server_name=host, server_port=port, share=share, allowed_paths=[str(gallery.root)],
                       max_file_size=MAX_UPLOAD_BYTES, **kw)


def default_adapters(runs: Path = Path("runs")) -> list[str]:
    """Every run folder under ``runs/`` that holds an adapter."""
    return sorted(str(p.parent) for p in runs.glob("*/adapter_config.json"))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mlilt demo``."""
    p = subparsers.add_parser(
        "demo", help="cross-lingual image search in the browser (Gradio)",
        description="Search a gallery (Emoji-CLDR pictures, or --images DIR) by text in any language or by a "
        "picture, with one or several language adapters; compare adapted against the frozen reference.",
    )
    p.add_argument("--adapter", action="append", default=[], metavar="RUN_OR_HUB_ID",
                   help="run/adapter folder or Hub id, repeatable; LANG=PATH names the language "
                   "(default: every run in runs/)")
    p.add_argument("--images", type=Path, help="folder of pictures to search (default: the Emoji-CLDR pictures)")
    p.add_argument("--index", choices=["exact", "faiss", "auto"], default="auto",
                   help="search backend; auto = FAISS from 50,000 pictures on")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    specs = args.adapter or default_adapters()
    if not specs:
        raise FileNotFoundError("no adapter: pass --adapter RUN_FOLDER, or train one first (mlilt adapt --lang sw)")
    gallery = folder_gallery(args.images) if args.images else emoji_gallery()
    print(f"mlilt demo: gallery {gallery.root} ({len(gallery.paths)} pictures)", file=sys.stderr)
    languages = [load_language(s, gallery, args.index, progress=not args.quiet) for s in specs]
    launch(build_demo(languages), gallery, host=args.host, port=args.port, share=args.share)
    return 0
