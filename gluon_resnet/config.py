"""One frozen `RunConfig` describes one run; its `run_id` names the run's files."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Any, Optional

from . import rules
from .names import pick
from .rules import INITS, SCHEDULES, WARMUPS  # noqa: F401  (re-exported: the valid names)


@dataclass(frozen=True)
class RunConfig:
    """Network, data, optimiser and seed of one run; defaults are d2l's protocol."""

    # network
    arch: str = "d2l18"
    ordering: str = "conv_bn_relu"
    width: float = 1.0
    final_bn_relu: Optional[bool] = None  # None: He et al.'s rule (on for pre-activation)
    projection_input: str = "preact"  # pre-activation blocks: what a 1x1 projection reads
    shortcut: str = "projection"  # where a block changes shape: 1x1 conv (d2l) or zero_pad
    # data
    size: int = 96
    train_per_class: Optional[int] = None  # None: all 6,000 per class
    test_per_class: Optional[int] = None  # None: all 1,000 per class
    augment: bool = False
    # optimiser
    lr: float = 0.05
    batch_size: int = 256
    epochs: int = 10
    momentum: float = 0.0
    weight_decay: float = 0.0
    init: str = "xavier"
    schedule: str = "constant"
    lr_steps: tuple[int, ...] = ()  # epochs (1-based) after which a step schedule multiplies lr
    lr_factor: float = 0.1
    # He et al. 2016 trained ResNet-110 at 0.01 until the training error fell below 80 %
    # (~400 iterations), then at 0.1. A warm-up at warmup_lr: the first warmup_steps optimiser
    # steps (0: none), and, where warmup_until_error is set (their rule: 0.8), every epoch
    # until one ends with a training error below it (whole epochs: the record of each epoch
    # decides the next, so a resumed run replays it).
    warmup_steps: int = 0
    warmup_lr: float = 0.01
    warmup_until_error: Optional[float] = None
    # the warmup_steps: all at warmup_lr ("constant", He et al.), or rising linearly from
    # warmup_lr to the epoch's rate ("linear", Goyal et al. 2017's gradual warm-up)
    warmup: str = "constant"
    # each optimiser step, the gradient of the mean batch loss is scaled down to this global
    # L2 norm where it is longer (Pascanu et al. 2013; None: never). The record counts the
    # steps it acted on, so a protocol can show that it only cut the spikes.
    clip_norm: Optional[float] = None
    # evaluation: each epoch also tests with BatchNorm statistics re-estimated at the current
    # weights from this many training batches (precise_bn.py; 0: running statistics only)
    precise_bn_batches: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # JSON, TOML and the CLI give loose types
            value = coerce(f.name, getattr(self, f.name))
            rules.check(f.name, value)  # every field's range, in one table (rules.py)
            object.__setattr__(self, f.name, value)
        if self.shortcut == "zero_pad":
            from .nets import check_zero_pad  # MXNet: only for the configs that need it

            check_zero_pad(self.arch, self.width)

    @property
    def run_id(self) -> str:
        """Readable prefix + hash of the whole config: same config, same id. Fields added
        after runs were committed are left out of the hash at their default (ID_DEFAULTS),
        so those runs keep their ids until their config really changes."""
        hashed = {k: v for k, v in self.to_dict().items()
                  if not (k in ID_DEFAULTS and v == ID_DEFAULTS[k])}
        canonical = json.dumps(hashed, sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
        width = "" if self.width == 1 else f"-w{self.width:g}"
        return f"{self.arch}{width}-{self.ordering}-s{self.seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_steps"] = list(self.lr_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        for name in d:
            check_field(name)
        return cls(**d)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)


FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))
# Fields added after runs were committed, with the default that keeps the old behaviour.
# Never change these defaults: the ids of committed runs depend on them.
ID_DEFAULTS = {"projection_input": "preact", "warmup_steps": 0, "warmup_lr": 0.01,
               "warmup_until_error": None, "shortcut": "projection",
               # Evaluation only (the trajectory is bitwise the same): runs recorded before it
               # existed keep their ids and simply lack the precise metrics.
               "precise_bn_batches": 20, "warmup": "constant",
               "clip_norm": None}
FIELD_TYPES = typing.get_type_hints(RunConfig)
_TRUE, _FALSE, _NONE = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("none", "null")


def check_field(name: str) -> str:
    """`name` if it is a RunConfig field, else ValueError listing the fields."""
    return pick(FIELDS, name, "config field", plural="fields")


def describe_type(name: str) -> str:
    """What a field accepts, in words: 'a float', 'true or false, or none', ..."""
    hint = FIELD_TYPES[check_field(name)]
    args = typing.get_args(hint)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"{_WORDS.get(inner, inner)} or none"
    if typing.get_origin(hint) is tuple:
        return "a list of integers such as 3,6 (or [] for none)"
    return _WORDS[hint]


_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a name"}


def coerce(name: str, value: Any) -> Any:
    """`value` (from Python, JSON or TOML) as field `name`'s type; ValueError saying what the
    field expects. An int is a float where a float is expected, never the other way round."""
    hint = FIELD_TYPES[check_field(name)]
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
            return tuple(int(v) for v in value)
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint is int and _is_int(value):
        return int(value)
    elif hint in (bool, str) and isinstance(value, hint):
        return value
    raise ValueError(f"{name} expects {describe_type(name)}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_text(value: Any) -> str:
    """A value as parse_value (--set/--grid) takes it back: the reproduce command's text."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return repr(value) if isinstance(value, float) else str(value)  # repr: exact round trip


def parse_value(name: str, text: str) -> Any:
    """Command-line text as field `name`'s type (`--set lr=0.1`, `--grid final_bn_relu=none`)."""
    hint = FIELD_TYPES[check_field(name)]
    word = text.strip()
    if type(None) in typing.get_args(hint) and word.lower() in _NONE:
        return None
    if typing.get_origin(hint) is tuple:
        inner = word.strip("[]()")
        try:
            return coerce(name, [int(v) for v in inner.split(",") if v.strip()])
        except ValueError:
            raise ValueError(f"{name} expects {describe_type(name)}, got {text!r}") from None
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    try:
        if base is bool:
            if word.lower() not in _TRUE + _FALSE:
                raise ValueError
            return word.lower() in _TRUE
        return coerce(name, base(word)) if base in (int, float) else word
    except ValueError:
        raise ValueError(f"{name} expects {describe_type(name)}, got {text!r}") from None
