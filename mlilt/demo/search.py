"""One language of the demo: a model (adapted, and its base when the run holds one) with the gallery indexed.

The gallery is embedded once: the frozen vision tower's features come from the feature cache
(:mod:`mlilt.features`, keyed by picture content, so re-indexing computes only new or edited pictures),
then each model's image head maps them into its space and an :class:`~mlilt.demo.index.EmbeddingIndex`
holds them. "adapted" is the trained adapter; "base" is the ``frozen`` reference kept in the run folder's
``reference-frozen/`` (heads only, same towers, same data): the base towers alone have no trained heads, so
nothing else can stand for "no adaptation". A run trained with ``--no-reference`` has no base.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mlilt.constants import ADAPTER_CONFIG_NAME, REFERENCE_DIR
from mlilt.data.images import open_picture
from mlilt.demo.gallery import Gallery, emoji_names
from mlilt.demo.index import FAISS_THRESHOLD, EmbeddingIndex
from mlilt.demo.saved_index import load_gallery_index
from mlilt.errors import first_line
from mlilt.features import CacheStats, FeatureStore, image_features
from mlilt.hub.loading import load
from mlilt.model import DualEncoder
from mlilt.onnx_runtime import OnnxModel


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
        model: A :class:`~mlilt.model.DualEncoder`, or an :class:`~mlilt.onnx_runtime.OnnxModel` (same two
            ``embed_*`` methods).
        gallery: The pictures indexed.
        images: Their embeddings in this model's space.
        captions: The caption set searched for an uploaded picture (e.g. Emoji-CLDR names in the language).
        names: Picture id -> local name, added to result labels.
    """

    name: str
    model: DualEncoder | OnnxModel
    gallery: Gallery
    images: EmbeddingIndex
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
        return self._hits(*self.images.search(np.asarray(self.model.embed_texts([text])[0]), k))

    def search_image(self, image, k: int = 8) -> list[Hit]:
        """Pictures nearest to a PIL picture (image-to-image through the embeddings)."""
        return self._hits(*self.images.search(np.asarray(self.model.embed_images([image])[0]), k))

    def caption_image(self, image, k: int = 5) -> list[Hit]:
        """Captions nearest to a PIL picture (empty when there is no caption set)."""
        if not self.captions:
            return []
        ids, scores = self._caption_index.search(np.asarray(self.model.embed_images([image])[0]), k)
        return [Hit(None, self.captions[i], float(s)) for i, s in zip(ids, scores)]

    @functools.cached_property
    def _caption_index(self) -> EmbeddingIndex:
        index = EmbeddingIndex(self.images.dim, backend="exact")
        index.add(np.asarray(self.model.embed_texts(self.captions)))
        return index


def index_gallery(
    model: DualEncoder, gallery: Gallery, backend: str = "auto", cache_root: Path | None = None, progress: bool = True
) -> tuple[EmbeddingIndex, CacheStats, Gallery]:
    """Embed a gallery with a model: cached frozen features (or the tower) -> image head -> :class:`EmbeddingIndex`.

    A picture that cannot be read is skipped, not fatal: it is named in ``stats.unreadable`` and left out of
    the gallery returned, whose pictures are the index's rows.

    Returns:
        ``(index, stats, gallery)``; ``stats`` counts feature-cache hits and misses (none when the vision
        tower is trained, so its features cannot come from the cache).
    """
    with torch.no_grad():
        if model.vision_frozen:
            store = FeatureStore(model.vision, "plain", root=cache_root)
            features, stats = image_features(
                model.vision, gallery.paths, store=store, progress=progress, skip_unreadable=True
            )
            device = model.logit_scale.device
            blocks = [model.embed_image_features(block.to(device)).cpu() for block in features.batches()]
            embeddings = torch.cat(blocks) if blocks else torch.empty(0, model.config.embed_dim)
        else:
            pictures, stats = _open_all(model, gallery.paths)
            embeddings = model.embed_images(pictures)
    index = EmbeddingIndex(model.config.embed_dim, backend=backend)
    index.add(embeddings.numpy())
    return index, stats, gallery.without(set(stats.unreadable))


def _open_all(model: DualEncoder, paths: list[str]):
    """The readable pictures of ``paths`` and the stats naming the others (for a vision tower that is trained)."""
    pictures, stats = [], CacheStats()
    for path in paths:
        try:
            pictures.append(model.vision.open(path))
        except (OSError, ValueError) as err:  # PIL's errors and PictureError
            stats.unreadable[path] = first_line(err)
    return pictures, stats


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


def load_language(
    spec: str,
    gallery: Gallery,
    backend: str = "auto",
    captions: list[str] | None = None,
    cache_root: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> LanguageModels:
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
    match = re.fullmatch(r"([a-z]{2,3}(?:_[A-Za-z]{4})?)=(.+)", spec)
    forced, source = (match.group(1), match.group(2)) if match else (None, spec)
    model = load(source).eval()
    lang = forced or adapter_lang(Path(source), model)
    names = emoji_names(lang)
    captions = list(dict.fromkeys(names.values())) if captions is None else captions
    searchers = []
    for kind, m in [("adapted", model), ("base", load_reference(Path(source)))]:
        if m is None:
            continue
        saved = load_gallery_index(m, gallery) if backend == "auto" else None  # a chosen backend indexes anew
        if isinstance(saved, tuple):
            index, shown = saved
            log(f"mlilt demo: {lang} {kind}: {len(index)} pictures from the saved index (search: {index.backend})")
        else:
            if saved and (not saved.startswith("no saved index") or len(gallery.paths) >= FAISS_THRESHOLD):
                log(f"mlilt demo: {lang} {kind}: {saved}")
            index, stats, shown = index_gallery(m, gallery, backend, cache_root, progress)
            cache = f"feature cache: {stats}" if m.vision_frozen else "vision tower trained: features computed"
            log(f"mlilt demo: {lang} {kind}: {len(index)} pictures indexed ({cache}; search: {index.backend})")
            for path, why in stats.unreadable.items():
                log(f"mlilt demo: skipped {path}: {why}")
        searchers.append(Searcher(f"{lang} {kind}", m, shown, index, captions, names))
    return LanguageModels(lang, source, searchers[0], searchers[1] if len(searchers) > 1 else None)


def load_onnx_language(
    folder: str | Path,
    gallery: Gallery,
    int8: bool = False,
    backend: str = "auto",
    captions: list[str] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> LanguageModels:
    """One language served from an ``mlilt export --onnx`` folder (no torch at query time; no base to compare)."""
    model = OnnxModel(folder, int8=int8)
    lang = model.config.get("exported_from", {}).get("lang") or "?"
    names = emoji_names(lang)
    captions = list(dict.fromkeys(names.values())) if captions is None else captions
    pictures, stats = [], CacheStats()
    for path in tqdm(
        gallery.paths, desc="embedding the gallery (ONNX)", unit="pic", disable=not progress, file=sys.stderr
    ):
        try:
            pictures.append(model.embed_images([open_picture(path)])[0])
        except (OSError, ValueError) as err:  # PIL's errors and PictureError
            stats.unreadable[path] = first_line(err)
    index = EmbeddingIndex(model.embed_dim, backend=backend)
    index.add(np.stack(pictures) if pictures else np.empty((0, model.embed_dim), np.float32))
    shown = gallery.without(set(stats.unreadable))
    log(f"mlilt demo: {lang} from ONNX ({'int8' if int8 else 'fp32'}): {len(index)} pictures indexed")
    for path, why in stats.unreadable.items():
        log(f"mlilt demo: skipped {path}: {why}")
    return LanguageModels(lang, str(folder), Searcher(f"{lang} onnx", model, shown, index, captions, names))


def load_reference(folder: Path) -> DualEncoder | None:
    """The run's frozen reference (``reference-frozen/``), if it holds one."""
    reference = folder / REFERENCE_DIR
    return load(reference).eval() if (reference / ADAPTER_CONFIG_NAME).is_file() else None
