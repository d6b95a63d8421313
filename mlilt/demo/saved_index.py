"""A gallery's search index saved once (``mlilt index``) and loaded back by the demo instead of indexing again.

An index belongs to one gallery folder and to one model's image side: the vision tower's features (its
fingerprint) and the image head's weights. It is kept in the cache under ``indexes/``, with the pictures it
holds (paths relative to the gallery) and a digest of the folder's listing when it was built. The demo uses it
only if the folder still lists the same pictures; otherwise it says why and indexes the gallery itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mlilt.cache import cache_dir, write_atomically
from mlilt.demo.gallery import Gallery
from mlilt.demo.index import EmbeddingIndex
from mlilt.errors import NotFoundError
from mlilt.features import tower_fingerprint
from mlilt.model import DualEncoder

GALLERY_FILE = "gallery.json"


def image_side_key(model: DualEncoder) -> str:
    """A hash of everything that decides a picture's embedding: the vision tower and the image head."""
    digest = hashlib.sha256(tower_fingerprint(model.vision, "plain").encode())
    for name, tensor in sorted(model.image_head.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def listing_digest(gallery: Gallery) -> str:
    """A hash of the pictures a gallery folder lists (their paths, in order)."""
    return hashlib.sha256("\n".join(gallery.paths).encode()).hexdigest()


def index_folder(model: DualEncoder, gallery: Gallery) -> Path:
    """Where the index of ``gallery`` for ``model``'s image side is kept."""
    root = hashlib.sha256(str(gallery.root).encode()).hexdigest()[:12]
    return cache_dir("indexes") / f"{root}-{image_side_key(model)}"


def save_gallery_index(index: EmbeddingIndex, model: DualEncoder, listed: Gallery, indexed: Gallery) -> Path:
    """Save ``index`` (whose rows are ``indexed``'s pictures) for the folder that listed ``listed``."""
    folder = index_folder(model, listed)
    about = {"gallery": str(listed.root), "listing_sha256": listing_digest(listed), "pictures": len(indexed.paths)}
    (folder / GALLERY_FILE).unlink(missing_ok=True)  # written last: its presence says the index is complete
    index.save(folder, about)
    relative = [str(Path(p).relative_to(indexed.root)) for p in indexed.paths]
    payload = {"paths": relative, "labels": None if indexed.labels == relative else indexed.labels}
    write_atomically(folder / GALLERY_FILE, lambda tmp: tmp.write_text(json.dumps(payload), encoding="utf-8"))
    return folder


def load_gallery_index(model: DualEncoder, gallery: Gallery) -> tuple[EmbeddingIndex, Gallery] | str:
    """The saved index of ``gallery`` for ``model`` and the pictures it holds, or why there is none to use."""
    folder = index_folder(model, gallery)
    if not (folder / GALLERY_FILE).is_file():
        return "no saved index (build one with `mlilt index`)"
    try:
        index = EmbeddingIndex.load(folder)
        saved = json.loads((folder / GALLERY_FILE).read_text(encoding="utf-8"))
    except NotFoundError as err:
        return f"{err}; build it again with `mlilt index`"
    except (OSError, json.JSONDecodeError) as err:
        return f"the saved index in {folder} cannot be read ({err}); build it again with `mlilt index`"
    if index.meta.get("about", {}).get("listing_sha256") != listing_digest(gallery):
        return "the saved index is out of date (pictures were added, removed or renamed): run `mlilt index` again"
    paths = [str(gallery.root / p) for p in saved["paths"]]
    labels = saved["labels"] or saved["paths"]
    if len(paths) != len(index) or len(labels) != len(paths):
        return f"the saved index in {folder} is incomplete; build it again with `mlilt index`"
    ids = gallery.image_ids
    kept_ids = None
    if ids:
        by_path = dict(zip(gallery.paths, ids))
        kept_ids = [by_path[p] for p in paths]
    return index, Gallery(gallery.root, paths, list(labels), kept_ids)


def caption_queries(model: DualEncoder, captions: list[str], count: int = 200) -> np.ndarray | None:
    """Embeddings of up to ``count`` captions, to choose an approximate index's nprobe with real queries."""
    if not captions:
        return None
    picked = captions[:: max(1, len(captions) // count)][:count]
    return np.asarray(model.embed_texts(picked))
