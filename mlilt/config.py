"""Run configuration: dataclasses with documented fields, checked on creation. The only place defaults live.

A run is described by a recipe (``configs/NAME.yaml``, shipped with the package) plus command-line overrides.
``configs/default.yaml`` writes out every default of these dataclasses with the reasons behind them; a test
checks that it says exactly what ``RunConfig()`` says. The resolved configuration is written as JSON next to
every artefact, so a run folder says how it was made.

Every field is type-checked (a YAML ``epochs: 1.5`` or ``lr: fast`` is refused with the field's name); a
number written as text, as PyYAML reads ``1e-4``, is accepted as the number it spells (YAML 1.2 reads it so).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlilt.constants import OFFLINE_TEXT, OFFLINE_VISION
from mlilt.data.images import DEFAULT_BACKGROUND, MAX_PIXELS, check_background
from mlilt.errors import ConfigError, NotFoundError
from mlilt.resources import configs_dir
from mlilt.tuning.registry import FROZEN, get_method

POOLINGS = ("mean", "cls")
# A language code: ISO 639 letters, then optional subtags (script, region): sw, yue, sr_Latn, zh-Hant, sw_KE.
# Checked before a code becomes part of a path (runs/<lang>-<method>).
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8})*")  # BCP 47's shape; never a path
IMAGE_VIEWS = ("plain", "flip", "zoom")


def _check_fields(config: Any) -> None:
    """Type-check (and normalise) every field of a config dataclass in place; raise :class:`ConfigError`."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        try:
            setattr(config, f.name, _coerce(value, hints[f.name]))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{f.name}: {err}") from None


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as type ``hint`` (int, float, str, bool, ``X | None``, ``tuple[str, ...]``), or TypeError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(_coerce(v, args[0]) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as text
            try:
                value = float(value) if hint is float else int(value)
            except ValueError:
                raise TypeError(f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        if hint is int and value != int(value):
            raise TypeError(f"expected a whole number, got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {value!r}")
        return value
    return value  # nested config dataclasses are checked by their own __post_init__


def _at_least(config: Any, **minimums: float) -> None:
    for name, minimum in minimums.items():
        value = getattr(config, name)
        if value is not None and value < minimum:
            raise ConfigError(f"{name} must be >= {minimum:g}, got {value:g}")


@dataclass
class TowerConfig:
    """One tower.

    Attributes:
        name: A Hugging Face model id, a local model folder, a timm model name, or a built-in
            offline tower (``offline:multilingual-e5-small``, ``offline:efficientnet-lite0``).
        method: What is trained inside the tower (a registered tuning method: ``mlilt.tuning``).
        reduction_factor: Adapter bottleneck = hidden size // reduction_factor.
        lora_rank: Rank of the LoRA updates.
        lora_alpha: LoRA scaling numerator.
        weights: Vision only: a local weights file (safetensors or a plain state dict) used
            instead of the Hub's pretrained weights.
        pooling: Text only: ``mean`` (better than CLS for XLM-R) or ``cls``.
        prefix: Text only: put before every text. None: the tower's convention (``"query: "`` for
            multilingual-e5); ``""``: none.
        max_length: Text only: tokens kept per caption; longer captions are reported, then cut.
        background: Vision only: the colour transparent pictures are composited on (a name or ``#rrggbb``).
        max_pixels: Vision only: larger pictures are refused (reported as bad records) before they are decoded.
    """

    name: str
    method: str = FROZEN
    reduction_factor: int = 4
    lora_rank: int = 8
    lora_alpha: int = 16
    weights: str | None = None
    pooling: str = "mean"
    prefix: str | None = None
    max_length: int = 64
    background: str = DEFAULT_BACKGROUND
    max_pixels: int = MAX_PIXELS

    def __post_init__(self):
        _check_fields(self)
        get_method(self.method)  # a known method (which tower it may tune is checked by ModelConfig)
        _at_least(self, reduction_factor=1, lora_rank=1, lora_alpha=1, max_length=4, max_pixels=1)
        try:
            check_background(self.background)
        except ValueError:
            raise ConfigError(f"background {self.background!r} is not a colour (e.g. white, black, #808080)") from None
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")


def _default_text() -> TowerConfig:
    # No e5 "query: " prefix: it doubles the tokens of these short captions for the same or better val R@1.
    return TowerConfig(OFFLINE_TEXT, "adapters", prefix="")


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

    text: TowerConfig = field(default_factory=_default_text)
    vision: TowerConfig = field(default_factory=lambda: TowerConfig(OFFLINE_VISION, FROZEN))
    embed_dim: int = 256
    init_temperature: float = 0.07
    image_views: tuple[str, ...] = ("plain",)

    def __post_init__(self):
        for side in ("text", "vision"):
            tower = getattr(self, side)
            if isinstance(tower, dict):
                setattr(self, side, _section(TowerConfig, tower, side))
            elif not isinstance(tower, TowerConfig):
                raise ConfigError(f"{side} must be a mapping of tower settings, got {tower!r}")
            get_method(getattr(self, side).method, tower=side)
        _check_fields(self)
        _at_least(self, embed_dim=1)
        if not 0 < self.init_temperature < 1:
            raise ConfigError(f"init_temperature must be in (0, 1), got {self.init_temperature}")
        unknown = set(self.image_views) - set(IMAGE_VIEWS)
        if unknown or "plain" not in self.image_views:
            raise ConfigError(
                f"image_views must include 'plain' and use {'/'.join(IMAGE_VIEWS)}; got {list(self.image_views)}"
            )


@dataclass
class DataConfig:
    """Training data.

    Attributes:
        source: ``emoji-cldr`` (built in), a JSONL/CSV caption file, a folder of images with a
            captions file, a public set from a local copy (``xm3600:PATH``, ...), or a Hugging Face
            ``datasets`` name / local path (see :mod:`mlilt.data.sources`).
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
        _check_fields(self)
        for code in (self.lang, *self.extra_langs):
            if not LANGUAGE_CODE.fullmatch(code):
                raise ConfigError(f"{code!r} is not a language code (CLDR / ISO 639, e.g. sw, yue, sr_Latn)")
        _at_least(self, max_caption_chars=1, max_train_captions=1, max_train_images=1)
        if not 0 <= self.max_bad_fraction <= 1:
            raise ConfigError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")


@dataclass
class TrainConfig:
    """The optimisation.

    Attributes:
        epochs: Passes over the training captions (after the heads warm-up).
        batch_size: Pairs per step, summed over all processes.
        lr: Peak learning rate of the tower parameters (adapters, LayerNorms, ...) and, after a
            heads warm-up, of the heads (gentle: they start trained).
        head_lr: Peak learning rate of the projection heads and temperature when they start from random
            (the warm-up, the frozen reference, a run without warm-up).
        weight_decay: AdamW weight decay (never applied to 1-D parameters).
        warmup_fraction: Share of steps with a linear warm-up before the cosine decay.
        grad_clip: Gradient-norm clipping threshold (0 disables).
        seed: Seed of initialisation, data order and dropout.
        checkpoint_every: Steps between checkpoints (an epoch's end always writes one).
        num_threads: CPU threads for torch (0 keeps torch's choice).
        head_warmup_epochs: Epochs of heads-only training (towers frozen, their features computed once)
            before the method trains, which then starts from trained heads instead of random ones
            (LP-FT). With random heads the method's epochs are far too few for the heads (val R@1 still
            rising); the ``frozen`` reference gets ``epochs + head_warmup_epochs`` epochs: the same budget.
        warm_head_lr: Peak learning rate of the heads while the method trains after a warm-up. None: ``lr``.
        skip_nonfinite_steps: A step whose loss or gradient is NaN or infinite stops the run with a message
            (False), or is skipped and counted (True); either way no parameter is ever updated with it.
        max_steps: Stop the method's training after this many steps (0: ``epochs`` decide), for sets so large
            that an epoch is more than the budget; the schedule spans the steps actually taken and the last
            one is evaluated as an epoch's end. The heads warm-up and the reference keep their epochs.
    """

    epochs: int = 6
    batch_size: int = 128
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    num_threads: int = 0
    head_warmup_epochs: int = 30
    warm_head_lr: float | None = None
    skip_nonfinite_steps: bool = False
    max_steps: int = 0

    def __post_init__(self):
        _check_fields(self)
        _at_least(self, epochs=1, checkpoint_every=1, num_threads=0, head_warmup_epochs=0, max_steps=0)
        _at_least(self, seed=0, weight_decay=0, grad_clip=0)
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (contrastive learning needs negatives), got {self.batch_size}")
        for name in ("lr", "head_lr", "warm_head_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _section(cls: type, values: Any, where: str = ""):
    """``cls(**values)``; unknown or misspelt keys are refused by name, and errors name ``where`` they are."""
    prefix = f"{where}: " if where else ""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}expected a mapping of settings, got {values!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{prefix}unknown setting(s) {unknown}; known: {', '.join(known)}")
    try:
        return cls(**values)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{prefix}{err}") from None
    except ConfigError as err:
        raise ConfigError(f"{prefix}{err}") from None


@dataclass
class RunConfig:
    """Everything one ``mlilt adapt`` run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: str = "default"

    def __post_init__(self):
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                setattr(self, name, _section(cls, getattr(self, name), name))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"a run configuration is a mapping with {', '.join(SECTIONS)}; got {data!r}")
        return _section(cls, data)


def list_recipes() -> list[str]:
    """Recipe names found in the shipped ``configs/*.yaml``."""
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    """A recipe by name (``configs/NAME.yaml``) or by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = configs_dir() / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    raise NotFoundError(
        f"no recipe {name_or_path!r}; known recipes: {', '.join(list_recipes())} (or give the path of a .yaml file)"
    )


def load_run_config(recipe: str = "default", overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a recipe and apply dotted overrides such as ``{"model.text.method": "lora"}`` (None values are skipped)."""
    path = recipe_path(recipe)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping with {', '.join(SECTIONS)}; got {type(data).__name__}")
    data.setdefault("recipe", path.stem)
    try:
        RunConfig.from_dict(copy.deepcopy(data))  # the recipe alone, so an error names the right culprit
    except ConfigError as err:
        raise ConfigError(f"recipe {path}: {err}") from None
    given = {dotted: value for dotted, value in (overrides or {}).items() if value is not None}
    for dotted, value in given.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return RunConfig.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{err} (set on the command line: {', '.join(given)})") from None
