"""What every RunConfig value may be, in one table: RunConfig.__post_init__ checks each field
here, whether the value came from the command line, a TOML file, a record's JSON or code.

Types are config.coerce's job (it runs first); this module checks values: names against the
valid ones, numbers for being finite and within their range."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .blocks import SHORTCUTS
from .idx import TEST_PER_CLASS, TRAIN_PER_CLASS
from .names import pick
from .nets import check_arch
from .orderings import PROJECTION_INPUTS, check_ordering

# Valid names live next to what they name (ORDERINGS in orderings.py, ARCHS in nets.py);
# these are protocol options only the config uses.
INITS = ("xavier", "msra")
SCHEDULES = ("constant", "step", "cosine")
WARMUPS = ("constant", "linear")
SEED_LIMIT = 2**31  # MXNet's and the data order's seeds are 31-bit (train.epoch_seed)
# MXNet takes the optimiser's numbers as float32: a larger one is rejected mid-run
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Range:
    """A closed or open interval for a number; `noun` and `note` make the message read well."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True
    noun: str = ""
    note: str = ""

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def text(self) -> str:
        """'> 0', '>= 1', 'in [0, 1)'."""
        if math.isinf(self.high):
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        return (f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                f"{')' if self.high_open else ']'}")


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def choice(noun: str, valid: Iterable[str]) -> Callable[[str], Any]:
    """A checker for a name among `valid`: ValueError listing them."""
    valid = tuple(valid)

    def check(value: str) -> None:
        pick(sorted(valid), value, noun)
    return check


POSITIVE, COUNT, NON_NEGATIVE = Range(0, low_open=True), Range(1), Range(0)
# optimiser numbers, which MXNet takes as float32 (FLOAT32_MAX)
FLOAT32_NOTE = "float32's largest, as MXNet takes it"
POSITIVE32 = Range(0, FLOAT32_MAX, low_open=True, high_open=False, note=FLOAT32_NOTE)
NON_NEGATIVE32 = Range(0, FLOAT32_MAX, high_open=False, note=FLOAT32_NOTE)


def per_class(images: int, part: str) -> Range:
    """A subset size: 1 up to the data set's images per class."""
    return Range(1, images, high_open=False,
                 note=f"Fashion-MNIST has {images:,} {part} images per class; None: all")

# field -> its rule: a Range for numbers (each element of a tuple), a checker for names.
# Optional fields may also be None, which coerce has already allowed.
RULES: dict[str, Range | Callable[[str], Any]] = {
    "arch": check_arch,
    "ordering": check_ordering,
    "width": Range(0, 64, low_open=True, high_open=False,
                   note="a multiple of the network's channels"),
    "final_bn_relu": None,
    "projection_input": choice("projection_input", PROJECTION_INPUTS),
    "shortcut": choice("shortcut", SHORTCUTS),
    "size": Range(1, 1024, high_open=False, note="image side in pixels"),
    "train_per_class": per_class(TRAIN_PER_CLASS, "training"),
    "test_per_class": per_class(TEST_PER_CLASS, "test"),
    "augment": None,
    "lr": POSITIVE32,
    "batch_size": COUNT,
    "epochs": COUNT,
    # momentum 1 never forgets a gradient and diverges; a negative one oscillates
    "momentum": Range(0, 1),
    "weight_decay": NON_NEGATIVE32,
    "init": choice("init", INITS),
    "schedule": choice("schedule", SCHEDULES),
    "lr_steps": Range(1, note="epochs after which the step schedule multiplies lr"),
    # a negative factor is a negative learning rate: gradient ascent
    "lr_factor": POSITIVE32,
    "warmup_steps": NON_NEGATIVE,
    "warmup_lr": POSITIVE32,
    "warmup_until_error": Range(0, 1, low_open=True, noun="a training error", note="He et al.: 0.8"),
    "warmup": choice("warmup", WARMUPS),
    "clip_norm": Range(0, FLOAT32_MAX, low_open=True, high_open=False, noun="a gradient norm",
                       note=f"{FLOAT32_NOTE}; None: never clipped"),
    "precise_bn_batches": NON_NEGATIVE,
    "seed": Range(0, SEED_LIMIT),
}


def check(name: str, value: Any) -> None:
    """ValueError saying what `name` accepts when `value` (already of its type) is outside it."""
    rule = RULES[name]
    if rule is None or value is None:
        return
    if not isinstance(rule, Range):
        rule(value)
        return
    for v in value if isinstance(value, tuple) else (value,):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not rule.holds(v):
            noun = f"{rule.noun} " if rule.noun else ""
            note = f" ({rule.note})" if rule.note else ""
            raise ValueError(f"{name} must be {noun}{rule.text()}{note}, got {value!r}")
