"""Training: the budget and its ladder of rungs (`budget`: no torch), the trainer (`trainer`), its benchmarks (`bench`).

`from nasx.train import train, TrainConfig, Budget, Ladder, ...` works; the trainer's names are imported on first
use (PEP 562), so that `nasx.train.budget` (read by studies, records and reports) never pays for torch. Code that
replaces the trainer (tests) patches `nasx.train.trainer.train`, the one the study worker calls.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .budget import MIN_RESOLUTION, Budget, BudgetError, Ladder

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .trainer import (REASONS, CheckpointMismatch, Continuation, EpochReport, Pruned, Trainer,  # noqa: F401
                          TrainConfig, TrainResult, augment, resolve_device, train)

_TRAINER = ("TrainConfig", "EpochReport", "TrainResult", "Pruned", "Trainer", "train", "augment", "resolve_device",
            "REASONS", "Continuation", "CheckpointMismatch")

__all__ = ["Budget", "BudgetError", "Ladder", "MIN_RESOLUTION", *_TRAINER]


def __getattr__(name: str) -> Any:
    """The trainer's public names, read from `nasx.train.trainer` on each access (a patched trainer is seen)."""
    if name in _TRAINER:
        return getattr(importlib.import_module(f"{__name__}.trainer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
