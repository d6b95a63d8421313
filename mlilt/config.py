"""Run configuration: dataclasses with documented fields, validated on creation.

A run is described by a recipe (``configs/NAME.yaml``) plus command-line overrides. The resolved
configuration is written as JSON next to every artefact, so a run folder says how it was made.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlilt.constants import OFFLINE_TEXT, OFFLINE_VISION

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"


class Method(str, enum.Enum):
    """What is trained inside a tower (one choice per tower). Heads and temperature are always trained."""

    FROZEN = "frozen"  # nothing in the tower (LiT-style "locked")
    LAYERNORM = "layernorm"  # LayerNorm weights and biases only
    BITFIT = "bitfit"  # biases only
    ADAPTERS = "adapters"  # LilT: Houlsby bottleneck adapters + all LayerNorms
    LORA = "lora"  # low-rank updates of the attention projections, through peft
    FULL = "full"  # everything (the baseline LilT compares against)


VISION_METHODS = (Method.FROZEN, Method.LAYERNORM, Method.ADAPTERS)


@dataclass
class TowerConfig:
    """One tower.

    Attributes:
        name: A Hugging Face model id, a local model folder, a timm model name, or a built-in
            offline tower (``offline:multilingual-e5-small``, ``offline:efficientnet-lite0``).
        method: What is trained inside the tower.
        reduction_factor: Adapter bottleneck = hidden size // reduction_factor.
        lora_rank: Rank of the LoRA updates.
        lora_alpha: LoRA scaling numerator.
        weights: Vision only: a local weights file (safetensors or a plain state dict) used
            instead of the Hub's pretrained weights.
        pooling: Text only: ``mean`` (default; better than CLS for XLM-R) or ``cls``.
        prefix: Text only: put before every text (multilingual-e5 expects ``"query: "``).
        max_length: Text only: tokens kept per caption; longer captions are reported, then cut.
    """

    name: str
    method: Method = Method.FROZEN
    reduction_factor: int = 4
    lora_rank: int = 8
    lora_alpha: int = 16
    weights: str | None = None
    pooling: str = "mean"
    prefix: str | None = None
    max_length: int = 64

    def __post_init__(self):
        self.method = Method(self.method)
        if self.reduction_factor < 1:
            raise ValueError(f"reduction_factor must be >= 1, got {self.reduction_factor}")
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        if self.max_length < 4:
            raise ValueError(f"max_length must be >= 4, got {self.max_length}")


@dataclass
class ModelConfig:
    """The dual encoder.

    Attributes:
        text: The text tower.
        vision: The vision tower.
        embed_dim: Size of the shared embedding space the projection heads map into.
        init_temperature: Starting softmax temperature (learned; stored as a log scale).
        image_views: Vision only, frozen tower: feature views computed once per picture
            (``plain``, ``flip``, ``zoom``); training samples one view per step, evaluation
            uses ``plain``.
    """

    text: TowerConfig = field(default_factory=lambda: TowerConfig(OFFLINE_TEXT, Method.ADAPTERS))
    vision: TowerConfig = field(default_factory=lambda: TowerConfig(OFFLINE_VISION, Method.FROZEN))
    embed_dim: int = 256
    init_temperature: float = 0.07
    image_views: tuple[str, ...] = ("plain",)

    def __post_init__(self):
        if isinstance(self.text, dict):
            self.text = TowerConfig(**self.text)
        if isinstance(self.vision, dict):
            self.vision = TowerConfig(**self.vision)
        if self.vision.method not in VISION_METHODS:
            allowed = ", ".join(m.value for m in VISION_METHODS)
            raise ValueError(f"vision method must be one of {allowed}; got {self.vision.method.value!r}")
        if not 0 < self.init_temperature < 1:
            raise ValueError(f"init_temperature must be in (0, 1), got {self.init_temperature}")
        self.image_views = tuple(self.image_views)
        unknown = set(self.image_views) - {"plain", "flip", "zoom"}
        if unknown or "plain" not in self.image_views:
            raise ValueError(f"image_views must include 'plain' and use plain/flip/zoom; got {self.image_views}")


@dataclass
class DataConfig:
    """Training data.

    Attributes:
        source: ``emoji-cldr`` (built in), a JSONL/CSV caption file, a folder of images with a
            captions file, or a Hugging Face ``datasets`` name / local path.
        lang: Language of the captions to train on (a CLDR / ISO 639 code).
        extra_langs: Other languages whose captions are added to training (e.g. ``[en]``);
            evaluation stays on ``lang``.
        extra_sources: More caption files mixed into the same run (e.g. machine-translated
            captions beside human ones); the share of each caption source is reported.
        max_bad_fraction: Stop, with a report, when more than this share of records is bad.
        max_caption_chars: A caption longer than this is reported as over-long and dropped.
        max_train_captions: Scarce-data control: train on at most this many captions (validation
            and test are untouched), drawn deterministically.
        max_train_images: Scarce-data control: train on the captions of at most this many pictures.
    """

    source: str = "emoji-cldr"
    lang: str = "sw"
    extra_langs: tuple[str, ...] = ()
    extra_sources: tuple[str, ...] = ()
    max_bad_fraction: float = 0.05
    max_caption_chars: int = 1000
    max_train_captions: int | None = None
    max_train_images: int | None = None

    def __post_init__(self):
        self.extra_langs = tuple(self.extra_langs)
        self.extra_sources = tuple(self.extra_sources)
        for name in ("max_train_captions", "max_train_images"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 when given, got {getattr(self, name)}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")


@dataclass
class TrainConfig:
    """The optimisation.

    Attributes:
        epochs: Passes over the training captions.
        batch_size: Pairs per step, summed over all processes.
        lr: Peak learning rate of the tower parameters (adapters, LayerNorms, ...).
        head_lr: Peak learning rate of the projection heads and temperature.
        weight_decay: AdamW weight decay (never applied to 1-D parameters).
        warmup_fraction: Share of steps with a linear warm-up before the cosine decay.
        grad_clip: Gradient-norm clipping threshold (0 disables).
        seed: Seed of initialisation, data order and dropout.
        checkpoint_every: Steps between checkpoints (an epoch's end always writes one).
        num_threads: CPU threads for torch (0 keeps torch's choice).
        head_warmup_epochs: Epochs of heads-only training (towers frozen, their features computed once)
            before the method trains, which then starts from trained heads instead of random ones
            (LP-FT). The ``frozen`` reference gets ``epochs + head_warmup_epochs`` epochs: the same budget.
        warm_head_lr: Peak learning rate of the heads while the method trains after a warm-up (they are
            trained already; a small rate keeps them from being undone). None: the same as ``lr``.
            ``head_lr`` is the heads' rate when they start from random (warm-up, reference, no warm-up).
    """

    epochs: int = 6
    batch_size: int = 128
    lr: float = 1e-3
    head_lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    num_threads: int = 0
    head_warmup_epochs: int = 0
    warm_head_lr: float | None = None

    def __post_init__(self):
        if self.head_warmup_epochs < 0:
            raise ValueError(f"head_warmup_epochs must be >= 0, got {self.head_warmup_epochs}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2 (contrastive learning needs negatives)")
        if self.lr <= 0 or self.head_lr <= 0 or (self.warm_head_lr is not None and self.warm_head_lr <= 0):
            raise ValueError("learning rates must be positive")


@dataclass
class RunConfig:
    """Everything one ``mlilt adapt`` run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: str = "default"

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if isinstance(self.data, dict):
            self.data = DataConfig(**self.data)
        if isinstance(self.train, dict):
            self.train = TrainConfig(**self.train)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_jsonable))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown top-level config keys: {sorted(unknown)}; expected {sorted(known)}")
        return cls(**data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"not JSON serialisable: {value!r}")


def list_recipes() -> list[str]:
    """Recipe names found in ``configs/*.yaml``."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    """A recipe by name (``configs/NAME.yaml``) or by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = CONFIGS_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = ", ".join(list_recipes())
    raise FileNotFoundError(f"no recipe {name_or_path!r}; known recipes: {known} (in {CONFIGS_DIR})")


def load_run_config(recipe: str = "default", overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a recipe and apply dotted overrides such as ``{"model.text.method": "lora"}``."""
    path = recipe_path(recipe)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data.setdefault("recipe", path.stem)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return RunConfig.from_dict(data)
    except TypeError as err:  # unknown field inside a section
        raise ValueError(f"recipe {path}: {err}") from err
