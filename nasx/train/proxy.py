"""The proxy budget: how much training a net gets in a study (epochs, share of the training split, image side,
batch). One type for the trainer, the study, its record, the fidelity runs and the report; imports no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import NasxError

__all__ = ["Proxy", "ProxyError", "MIN_RESOLUTION"]

MIN_RESOLUTION = 8  # px: the smallest proxy side (the shipped spaces' nets need more; see study.check_resolution)

_NAME = re.compile(r"e(\d+)-f([0-9]*\.?[0-9]+(?:e-?\d+)?)(?:-r(\d+))?(?:-b(\d+))?")
_KEYS = {"epochs": "epochs", "fraction": "fraction", "resolution": "resolution", "res": "resolution",
         "batch": "batch_size", "batch_size": "batch_size"}


class ProxyError(NasxError, ValueError):
    """A proxy budget that cannot be trained on (one line, names the setting)."""


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


@dataclass(frozen=True)
class Proxy:
    """`epochs` passes over `fraction` of the training split (a fixed, stratified, seeded subset when < 1) at
    `resolution` px (None: the data's), batch `batch_size` (None: the trainer's default for the device). Its name
    is its text form: e1-f0.25-r24-b128."""

    epochs: int = 5
    fraction: float = 1.0
    resolution: Optional[int] = None
    batch_size: Optional[int] = None

    def __post_init__(self) -> None:
        if not _whole(self.epochs):
            raise ProxyError(f"budget {self.epochs!r} epochs: must be a whole number >= 1")
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)) \
                or not 0 < self.fraction <= 1:
            raise ProxyError(f"budget fraction {self.fraction}: must lie in (0, 1]")
        for key in ("resolution", "batch_size"):
            value = getattr(self, key)
            if value is not None and not _whole(value):
                raise ProxyError(f"budget {key} {value!r}: must be a whole number >= 1")
        if self.resolution is not None and self.resolution < MIN_RESOLUTION:
            raise ProxyError(f"budget resolution {self.resolution} px: below the smallest proxy side, "
                             f"{MIN_RESOLUTION} px")

    @property
    def name(self) -> str:
        return (f"e{self.epochs}-f{self.fraction:g}" + (f"-r{self.resolution}" if self.resolution else "")
                + (f"-b{self.batch_size}" if self.batch_size else ""))

    def batch_for(self, cuda: bool) -> int:
        """The batch the trainer takes: this budget's, else the device's default (512 on CUDA, 128 on a CPU)."""
        return self.batch_size or (512 if cuda else 128)

    def cost(self, native: int) -> float:
        """Training work relative to one pass over the whole training split at the data's resolution
        (epochs x fraction x (resolution / native)^2: conv FLOPs scale with the image area)."""
        side = self.resolution or native
        return self.epochs * self.fraction * (side / native) ** 2

    def describe(self) -> str:
        text = f"{self.epochs} epoch{'s' if self.epochs > 1 else ''} on {self.fraction:.3g} of the training split"
        if self.resolution:
            text += f" at {self.resolution} px"
        if self.batch_size:
            text += f", batch {self.batch_size}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The stored form (a trial's `budget`): epochs and fraction, then resolution and batch size where set."""
        return {"epochs": self.epochs, "fraction": self.fraction,
                **({"resolution": self.resolution} if self.resolution is not None else {}),
                **({"batch_size": self.batch_size} if self.batch_size is not None else {})}

    @classmethod
    def parse(cls, text: str) -> "Proxy":
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
                raise ProxyError(f"budget {text!r}: write e<epochs>-f<fraction>[-r<px>][-b<batch>] (e1-f0.25) or "
                                 f"epochs=N,fraction=F[,resolution=PX][,batch=B]")
            try:
                fields[_KEYS[key.strip()]] = float(value) if _KEYS[key.strip()] == "fraction" else int(value)
            except ValueError:
                raise ProxyError(f"budget {text!r}: {key.strip()}={value.strip()!r} is not a number") from None
        if "epochs" not in fields:
            raise ProxyError(f"budget {text!r}: give epochs (e.g. e1-f0.25 or epochs=1,fraction=0.25)")
        return cls(**fields)
