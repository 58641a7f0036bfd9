"""The budget: how much training a net gets (epochs, share of the training split, image side, batch), and the
ladder of budgets successive halving climbs. One type each for the flags, the study, the trainer, its record, the
fidelity runs, the simulator and the report; imports no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Optional

from ..errors import NasxError

__all__ = ["Budget", "BudgetError", "Ladder", "MIN_RESOLUTION", "ASHA_RUNGS"]

MIN_RESOLUTION = 8  # px: the smallest proxy side (the shipped spaces' nets need more; see study.check_resolution)

_NAME = re.compile(r"e(\d+)-f([0-9]*\.?[0-9]+(?:e-?\d+)?)(?:-r(\d+))?(?:-b(\d+))?")
_KEYS = {"epochs": "epochs", "fraction": "fraction", "resolution": "resolution", "res": "resolution",
         "batch": "batch_size", "batch_size": "batch_size"}


class BudgetError(NasxError, ValueError):
    """A budget or ladder that cannot be trained on (one line, names the setting)."""


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


@dataclass(frozen=True)
class Budget:
    """`epochs` passes over `fraction` of the training split (a fixed, stratified, seeded subset when < 1) at
    `resolution` px (None: the data's), batch `batch_size` (None: the trainer's default for the device). Its name
    is its text form: e1-f0.25-r24-b128. A study's budget may be partial: epochs or fraction None where the user
    gave none, chosen for the machine by `nasx.study.resolve` (`filled`); only a whole budget trains."""

    epochs: Optional[int] = 5
    fraction: Optional[float] = 1.0
    resolution: Optional[int] = None
    batch_size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.epochs is not None and not _whole(self.epochs):
            raise BudgetError(f"budget {self.epochs!r} epochs: must be a whole number >= 1")
        if self.fraction is not None and (isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float))
                                          or not 0 < self.fraction <= 1):
            raise BudgetError(f"budget fraction {self.fraction!r}: must be a number in (0, 1]")
        for key in ("resolution", "batch_size"):
            value = getattr(self, key)
            if value is not None and not _whole(value):
                raise BudgetError(f"budget {key} {value!r}: must be a whole number >= 1")
        if self.resolution is not None and self.resolution < MIN_RESOLUTION:
            raise BudgetError(f"budget resolution {self.resolution} px is below the smallest proxy side, "
                              f"{MIN_RESOLUTION} px")

    @classmethod
    def given(cls, epochs: Optional[int] = None, fraction: Optional[float] = None, resolution: Optional[int] = None,
              batch_size: Optional[int] = None) -> Optional["Budget"]:
        """The (partial) budget of the parts a user gave (flags, a study file's keys); None when none was given."""
        parts = (epochs, fraction, resolution, batch_size)
        return None if all(p is None for p in parts) else cls(*parts)

    @property
    def whole(self) -> bool:
        """Epochs and fraction both set: a budget a net can train on."""
        return self.epochs is not None and self.fraction is not None

    def filled(self, *, epochs: Optional[int] = None, fraction: Optional[float] = None,
               resolution: Optional[int] = None, batch_size: Optional[int] = None) -> "Budget":
        """This budget with each part it leaves unset (None) taken from the arguments."""
        return replace(self, **{k: v for k, v in (("epochs", epochs), ("fraction", fraction),
                                                  ("resolution", resolution), ("batch_size", batch_size))
                                if getattr(self, k) is None and v is not None})

    @property
    def name(self) -> str:
        """e1-f0.25-r24-b128; a part the machine will choose shows as ? (e?-f?-r24)."""
        epochs = "?" if self.epochs is None else self.epochs
        fraction = "?" if self.fraction is None else f"{self.fraction:g}"
        return (f"e{epochs}-f{fraction}" + (f"-r{self.resolution}" if self.resolution else "")
                + (f"-b{self.batch_size}" if self.batch_size else ""))

    def batch_for(self, cuda: bool) -> int:
        """The batch the trainer takes: this budget's, else the device's default (512 on CUDA, 128 on a CPU)."""
        return self.batch_size or (512 if cuda else 128)

    def cost(self, native: Optional[int] = None) -> float:
        """Training work relative to one pass over the whole training split at the data's side `native` (needed
        only when the budget names a resolution): epochs x fraction x (resolution / native)^2, as conv FLOPs scale
        with the image area."""
        self.check_whole()
        area = 1.0 if self.resolution is None else (self.resolution / native) ** 2
        return self.epochs * self.fraction * area

    def check_whole(self) -> "Budget":
        """This budget, or a one-line BudgetError when its epochs or fraction is not chosen yet."""
        if not self.whole:
            raise BudgetError(f"budget {self.name}: epochs and fraction are not chosen yet (nasx.study.resolve fills "
                              f"them for the machine)")
        return self

    def describe(self) -> str:
        epochs = "? epochs" if self.epochs is None else f"{self.epochs} epoch{'s' if self.epochs > 1 else ''}"
        share = "?" if self.fraction is None else f"{self.fraction:.3g}"
        text = f"{epochs} on {share} of the training split"
        if self.resolution:
            text += f" at {self.resolution} px"
        if self.batch_size:
            text += f", batch {self.batch_size}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The stored form (a trial's `budget`, a study config's): epochs and fraction (None where not chosen yet),
        then resolution and batch size where set; `Budget(**d)` reads it back."""
        return {"epochs": self.epochs, "fraction": self.fraction,
                **({"resolution": self.resolution} if self.resolution is not None else {}),
                **({"batch_size": self.batch_size} if self.batch_size is not None else {})}

    @classmethod
    def parse(cls, text: str) -> "Budget":
        """`e1-f0.25-r24-b128` (the name; r and b optional) or `epochs=1,fraction=0.25,resolution=24,batch=128`."""
        t = str(text).strip()
        m = _NAME.fullmatch(t)
        if m:
            return cls(int(m.group(1)), float(m.group(2)), int(m.group(3)) if m.group(3) else None,
                       int(m.group(4)) if m.group(4) else None)
        fields: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in t.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in _KEYS:
                raise BudgetError(f"budget {text!r}: write e<epochs>-f<fraction>[-r<px>][-b<batch>] (e1-f0.25) or "
                                  f"epochs=N,fraction=F[,resolution=PX][,batch=B]")
            try:
                fields[_KEYS[key.strip()]] = float(value) if _KEYS[key.strip()] == "fraction" else int(value)
            except ValueError:
                raise BudgetError(f"budget {text!r}: {key.strip()}={value.strip()!r} is not a number") from None
        if "epochs" not in fields:
            raise BudgetError(f"budget {text!r}: give epochs (e.g. e1-f0.25 or epochs=1,fraction=0.25)")
        return cls(**fields)


ASHA_RUNGS = 3  # rungs `--schedule asha` derives from the study's budget: top / eta^2, top / eta, top
_SIDE = 32  # the image side at which rungs are checked to cost more each (a rung's cost ratio barely depends on it)


@dataclass(frozen=True)
class Ladder:
    """Successive-halving rungs: budgets lowest first, each costing more than the one below (the top one is the
    study's budget), and the reduction factor eta (a rung promotes the top 1/eta of its nets). A rung is an index
    into `budgets`."""

    budgets: tuple[Budget, ...]
    eta: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "budgets", tuple(self.budgets))
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise BudgetError(f"eta: {self.eta!r} must be a whole number >= 2")
        if len(self.budgets) < 2:
            raise BudgetError(f"rungs: {self.names or '(none)'} names one budget; give two or more, lowest first")
        costs = [b.cost(_SIDE) for b in self.budgets]
        if any(b <= a for a, b in zip(costs, costs[1:])):
            raise BudgetError(f"rungs: {self.names}: each budget must cost more than the one before it (increasing, "
                              f"lowest first)")

    @classmethod
    def parse(cls, text: str, eta: int = 3) -> "Ladder":
        """Budgets by name, comma-separated, lowest first: `e1-f0.125,e1-f0.5`."""
        return cls(tuple(Budget.parse(name) for name in str(text).split(",") if name.strip()), eta)

    @classmethod
    def geometric(cls, top: Budget, eta: int = 3, rungs: int = ASHA_RUNGS, digits: Optional[int] = None) -> "Ladder":
        """`rungs` budgets that cut the top budget's share of the training split by eta per rung (same epochs, side
        and batch; Hyperband's geometric ladder), each share rounded to `digits` significant digits where given
        (`--schedule asha`: 3, so that e1-f0.5 with eta 3 gives e1-f0.0556, e1-f0.167, e1-f0.5)."""
        top.check_whole()
        shares = [top.fraction / eta ** (rungs - 1 - k) for k in range(rungs - 1)]
        if digits is not None:
            shares = [float(f"{share:.{digits}g}") for share in shares]
        return cls(tuple(replace(top, fraction=share) for share in shares) + (top,), eta)

    @property
    def names(self) -> str:
        """Its text form, the --rungs flag's: e1-f0.125,e1-f0.5."""
        return ",".join(b.name for b in self.budgets)

    @property
    def top(self) -> int:
        """The top rung's index."""
        return len(self.budgets) - 1

    def __len__(self) -> int:
        return len(self.budgets)

    def work(self, native: Optional[int] = None) -> tuple[float, ...]:
        """Each rung's training work relative to the top rung's (Budget.cost at the data's side `native`, needed
        only where a rung names a resolution)."""
        top = self.budgets[-1].cost(native)
        return tuple(b.cost(native) / top for b in self.budgets)

    def retrain_overhead(self, native: Optional[int] = None) -> float:
        """Work spent on a net that reaches the top rung, over the top rung's own work, when every promotion
        retrains from scratch: sum of all rungs / top rung (1 + 1/3 + 1/9 = 1.44 for eta 3 on a geometric ladder of
        three)."""
        return sum(self.work(native))

    def with_batch(self, batch_size: Optional[int]) -> "Ladder":
        """The ladder with `batch_size` on every rung that names none."""
        return replace(self, budgets=tuple(b if b.batch_size is not None else replace(b, batch_size=batch_size)
                                           for b in self.budgets))
