"""Learning rate of each epoch: constant (d2l), step (Keras/He et al.) or cosine."""
from __future__ import annotations

import math
from typing import Sequence

from .config import RunConfig


def lr_at(cfg: RunConfig, epoch: int) -> float:
    """The learning rate used throughout `epoch` (1-based); set once per epoch."""
    if not 1 <= epoch <= cfg.epochs:
        raise ValueError(f"epoch must be in 1..{cfg.epochs}, got {epoch}")
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        # lr_steps name the epochs *after* which lr is multiplied by lr_factor.
        passed = sum(1 for s in cfg.lr_steps if s < epoch)
        return cfg.lr * cfg.lr_factor ** passed
    if cfg.schedule == "cosine":
        # Half a cosine over the run, sampled at each epoch's start: epoch 1 uses cfg.lr.
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def warming_up(cfg: RunConfig, train_accs: Sequence[float]) -> bool:
    """Whether the next epoch is all warm-up under He et al.'s rule, given the training
    accuracies of the epochs so far: no epoch has yet ended below warmup_until_error."""
    return cfg.warmup_until_error is not None and all(
        1.0 - acc >= cfg.warmup_until_error for acc in train_accs)


def step_lr(cfg: RunConfig, epoch: int, step: int, steps_per_epoch: int,
            warming: bool = False) -> float:
    """The learning rate of optimiser step `step` (0-based) of `epoch`: warmup_lr in a warm-up
    epoch (`warming`, from warming_up) and for the run's first warmup_steps steps (rising
    linearly from it to the epoch's rate with warmup="linear"), then the epoch's (a pure
    function of the record so far: resumes replay it)."""
    done = (epoch - 1) * steps_per_epoch + step
    if warming:
        return cfg.warmup_lr
    if done < cfg.warmup_steps:
        if cfg.warmup == "linear":
            target = lr_at(cfg, epoch)
            return cfg.warmup_lr + (target - cfg.warmup_lr) * done / cfg.warmup_steps
        return cfg.warmup_lr
    return lr_at(cfg, epoch)


def lr_schedule(cfg: RunConfig) -> list[float]:
    """lr_at for every epoch of the run."""
    return [lr_at(cfg, e) for e in range(1, cfg.epochs + 1)]
