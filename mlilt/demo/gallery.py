"""The pictures the demo searches: the Emoji-CLDR pictures, or every picture under a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlilt.data.emoji_cldr import build_emoji_cldr, load_emoji_cldr, load_manifest
from mlilt.errors import MliltError, NotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


@dataclass
class Gallery:
    """The pictures searched: absolute paths under ``root``, a label each, and Emoji-CLDR ids when known."""

    root: Path
    paths: list[str]
    labels: list[str]
    image_ids: list[str] | None = None

    def without(self, left_out: set[str]) -> Gallery:
        """The same gallery without the pictures at ``left_out`` (e.g. ones that cannot be read)."""
        keep = [i for i, path in enumerate(self.paths) if path not in left_out]
        ids = [self.image_ids[i] for i in keep] if self.image_ids else None
        return Gallery(self.root, [self.paths[i] for i in keep], [self.labels[i] for i in keep], ids)


def emoji_gallery() -> Gallery:
    """Every Emoji-CLDR picture (built into the cache on first use), labelled with its English name."""
    root = build_emoji_cldr()
    pictures = load_manifest()["pictures"]
    return Gallery(
        root / "images",
        [str(root / p["file"]) for p in pictures],
        [p["english_name"] for p in pictures],
        [p["image_id"] for p in pictures],
    )


def folder_gallery(folder: str | Path) -> Gallery:
    """Every picture under ``folder`` (recursively, by suffix), labelled with its relative path."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise NotFoundError(f"no image folder at {folder}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise NotFoundError(f"{folder} holds no pictures ({', '.join(IMAGE_SUFFIXES)})")
    return Gallery(root, [str(p) for p in paths], [str(p.relative_to(root)) for p in paths])


def emoji_names(lang: str) -> dict[str, str]:
    """Emoji-CLDR picture id -> short name in ``lang`` (empty when the language or CLDR is missing)."""
    try:
        return {r.image_id: r.caption for r in load_emoji_cldr(lang, names_only=True)}
    except (MliltError, OSError):
        return {}
