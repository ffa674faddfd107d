"""What a run shows while it trains: a tqdm bar on a terminal, one plain line per epoch.

The plain line is all that CI logs and background runs (`nohup`) get, so it carries the
epoch's whole summary; the bar only adds the live view inside an epoch.
"""
from __future__ import annotations

from typing import Callable, Optional


def epoch_line(e: dict) -> str:
    """One epoch's summary: losses, accuracies, learning rate, speed and time."""
    def f(v: Optional[float]) -> str:
        return "nan" if v is None else f"{v:.4f}"
    precise = "" if e.get("precise_test_acc") is None else (
        f" | precise BN: test loss {f(e.get('precise_test_loss'))} acc "
        f"{e['precise_test_acc']:.4f}")
    return (f"train loss {f(e['train_loss'])} acc {e['train_acc']:.4f} | test loss "
            f"{f(e['test_loss'])} acc {e['test_acc']:.4f}{precise} | lr {e['lr']:.4g} | "
            f"{e['images_per_sec']:.1f} img/s | {e['seconds']:.1f} s")


class EpochProgress:
    """A tqdm bar during the epoch when `bar` is set (loss, accuracy, images/s, ETA), then
    `head: <epoch_line>` through `log`."""

    def __init__(self, head: str, images: int, bar: bool, log: Callable[[str], None]):
        self.head, self.log = head, log
        self.bar = None
        if bar:
            from tqdm import tqdm
            self.bar = tqdm(total=images, unit="img", desc=head, dynamic_ncols=True, leave=True)

    def __enter__(self) -> "EpochProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, images: int, loss: float, acc: float) -> None:
        if self.bar is not None:
            self.bar.update(images - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}", refresh=False)

    def done(self, e: dict) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()
        self.log(f"{self.head}: {epoch_line(e)}")
