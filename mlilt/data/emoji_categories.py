"""Emoji categories for zero-shot classification: which category each picture is in, and the category
names in every language, both from Unicode CLDR.

- ``common/properties/labels.txt`` assigns characters to categories ("Animals & Nature", ...).
- ``common/main/<lang>.xml`` names the categories (``<characterLabel type="animals_nature">``),
  e.g. Swahili "wanyama au ulimwengu".
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

from mlilt.data.emoji_cldr import CLDR_DIR

# labels.txt category -> CLDR characterLabel type
CATEGORY_TYPES = {
    "Smileys & People": "smileys_people",
    "Animals & Nature": "animals_nature",
    "Food & Drink": "food_drink",
    "Travel & Places": "travel_places",
    "Activities": "activities",
    "Objects": "objects",
    "Symbols": "symbols",
    "Flags": "flags",
}
VARIATION_SELECTOR = "\ufe0f"


def _unicode_set(text: str) -> list[str]:
    """The strings of a simple UnicodeSet: ``[a-c{xy}d]`` -> a, b, c, xy, d."""
    body, items, i = text.strip()[1:-1], [], 0
    while i < len(body):
        if body[i] == "{":
            end = body.index("}", i)
            items.append(body[i + 1 : end])
            i = end + 1
        elif i + 2 < len(body) and body[i + 1] == "-":
            items += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
            i += 3
        else:
            items.append(body[i])
            i += 1
    return [s.replace(VARIATION_SELECTOR, "") for s in items if s.strip()]


@functools.cache
def emoji_category() -> dict[str, str]:
    """Emoji (without U+FE0F) -> category type (``animals_nature``, ...)."""
    mapping = {}
    for line in (CLDR_DIR / "properties" / "labels.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        chars, category, _ = (part.strip() for part in line.split(";"))
        if category in CATEGORY_TYPES:
            for emoji in _unicode_set(chars):
                mapping.setdefault(emoji, CATEGORY_TYPES[category])
    return mapping


@functools.cache
def category_names(lang: str) -> dict[str, str]:
    """Category type -> its name in ``lang`` (only the categories CLDR names in that language)."""
    path = CLDR_DIR / "main" / f"{lang}.xml"
    if not path.exists():
        return {}
    wanted = set(CATEGORY_TYPES.values())
    return {
        node.get("type"): node.text.strip()
        for node in ET.parse(path).getroot().iter("characterLabel")
        if node.get("type") in wanted and node.text and node.text.strip() and node.text.strip() != "↑↑↑"
    }
