"""Which language a query is in, offline, so the demo can pick that language's adapter."""

from __future__ import annotations

import re
from collections.abc import Sequence

ETHIOPIC = re.compile(r"[\u1200-\u139f\u2d80-\u2ddf\uab00-\uab2f]")


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
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder  # optional: the demo extra
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
