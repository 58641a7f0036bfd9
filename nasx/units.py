"""Counts as people write them: 1.23M, 10M, 1.2G; one formatter and one parser for every page, table and message."""

from __future__ import annotations

import math
import re
from typing import Any, Optional

__all__ = ["human", "exact", "parse_count"]

_UNITS = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))
_SUFFIX = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def human(x: float, digits: Optional[int] = 3) -> str:
    """1234567 -> '1.23M' (`digits` significant digits; None: as many as the number needs, '2.5M', as ticks)."""
    spec = "g" if digits is None else f".{digits}g"
    for unit, scale in _UNITS:
        if abs(x) >= scale:
            return f"{x / scale:{spec}}{unit}" if abs(x) / scale < 1000 else f"{x / scale:,.0f}{unit}"
    return f"{x:{spec}}"


def exact(n: int) -> int | str:
    """10_000_000 -> '10M' where that is exact (as space files write bands), else the number itself."""
    for unit, scale in _UNITS[1:]:
        if n % scale == 0:
            return f"{n // scale}{unit}"
    return int(n)


def parse_count(text: Any) -> int:
    """'150M' -> 150_000_000, '1.2G', '500k', or a plain number; ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKMGT]?)\s*", str(text))
        if not match:
            raise ValueError(f"{text!r}: not a count (write e.g. 150M, 1.2G, 500k)")
        value = float(match.group(1)) * _SUFFIX[match.group(2)]
    if not math.isfinite(value):  # 1e400 reads as inf
        raise ValueError(f"{text!r}: not a finite count")
    return int(text) if isinstance(text, int) else int(round(value))
