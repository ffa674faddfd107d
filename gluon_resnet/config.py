"""One frozen `RunConfig` describes one run; its `run_id` names the run's files."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional

from .nets import check_arch
from .orderings import check_ordering

# Valid names live next to what they name (ORDERINGS in orderings.py, ARCHS in
# nets.py); these two are protocol options only this module validates.
INITS = ("xavier", "msra")
SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class RunConfig:
    """Network, data, optimiser and seed of one run; defaults are d2l's protocol."""

    # network
    arch: str = "d2l18"
    ordering: str = "conv_bn_relu"
    width: float = 1.0
    final_bn_relu: Optional[bool] = None  # None: He et al.'s rule (on for pre-activation)
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
    seed: int = 0

    def __post_init__(self) -> None:
        check_arch(self.arch)
        check_ordering(self.ordering)
        _choice("init", self.init, INITS)
        _choice("schedule", self.schedule, SCHEDULES)
        _positive("width", self.width)
        _positive("size", self.size)
        _positive("lr", self.lr)
        _positive("batch_size", self.batch_size)
        _positive("epochs", self.epochs)
        for name in ("train_per_class", "test_per_class"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value)
        if self.momentum < 0 or self.weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0, "
                             f"got {self.momentum} and {self.weight_decay}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        # JSON round trips turn tuples into lists; keep the dataclass hashable.
        object.__setattr__(self, "lr_steps", tuple(int(s) for s in self.lr_steps))

    @property
    def run_id(self) -> str:
        """Readable prefix + hash of the whole config: same config, same id."""
        canonical = json.dumps(self.to_dict(), sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
        width = "" if self.width == 1 else f"-w{self.width:g}"
        return f"{self.arch}{width}-{self.ordering}-s{self.seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_steps"] = list(self.lr_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)


def _choice(name: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid {name}s: {', '.join(sorted(valid))}")


def _positive(name: str, value) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
