"""The CPU cores a process may train on: what the CPU default of a study splits into trials x threads."""

from __future__ import annotations

import os

__all__ = ["cpu_cores"]


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one, else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
