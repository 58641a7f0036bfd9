"""Optuna studies of accuracy against FLOPs: the trial record (`record`), settings (`config`), storage and locks
(`storage`), one worker's loop (`worker`), running and resuming (`run`), live snapshots (`progress`), early
stopping (`prune`), and the one reader of stored studies (`store`: `nasx.open_study` is its `open_study`; the
`open_study` here opens a study to run it).

The Optuna study is the record: each trial's user attributes are a `nasx.study.record.TrialRecord`, so a study
opens in optuna-dashboard as it is and `nasx report` needs nothing else. The names below are imported on first
use (PEP 562), so that `import nasx.study.record` (a report, `nasx export`) never pays for the worker and Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers and editors
    from .config import OBJECTIVES, StudyConfig, StudyError, load_config, redact, resolve
    from .explore import Exploration, explore
    from .progress import FrontPoint, RunningTrial, Snapshot, snapshot
    from .record import Shelf
    from .references import reference_nets, run_references
    from .run import Candidate, RunSummary, enqueue, prepare, run_study
    from .storage import open_storage, open_study, repair_journal, study_lock
    from .store import StoredStudy, has_study, open_studies
    from .worker import Worker, reap_stale

# public name -> its module under nasx.study
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(("OBJECTIVES", "StudyConfig", "StudyError", "load_config", "redact", "resolve"), "config"),
    **dict.fromkeys(("Exploration", "explore"), "explore"),
    **dict.fromkeys(("FrontPoint", "RunningTrial", "Snapshot", "snapshot"), "progress"),
    **dict.fromkeys(("reference_nets", "run_references"), "references"),
    **dict.fromkeys(("Candidate", "RunSummary", "enqueue", "prepare", "run_study"), "run"),
    **dict.fromkeys(("open_storage", "open_study", "repair_journal", "study_lock"), "storage"),
    **dict.fromkeys(("Worker", "reap_stale"), "worker"),
    "Shelf": "record",
    **dict.fromkeys(("StoredStudy", "has_study", "open_studies"), "store"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562) and keep its public names here."""
    try:
        module = importlib.import_module(f"{__name__}.{_PUBLIC[name]}")
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    # all of that module's names at once: importing `explore` (the module) binds it here, over `explore` the function
    for public, owner in _PUBLIC.items():
        if owner == _PUBLIC[name]:
            globals()[public] = getattr(module, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
