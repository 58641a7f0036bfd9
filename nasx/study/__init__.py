"""Optuna studies of accuracy against FLOPs: settings (`config`), storage and locks (`storage`), one worker's
loop (`worker`), running and resuming (`run`), live snapshots (`progress`), early stopping (`prune`).

The Optuna study is the record: each trial's user attributes are a `nasx.record.TrialRecord`, so a study
opens in optuna-dashboard as it is and `nasx report` needs nothing else.
"""

from .config import OBJECTIVES, StudyConfig, StudyError, load_config, redact, resolve
from .explore import Exploration, explore
from .progress import FrontPoint, RunningTrial, Snapshot, snapshot
from .references import reference_nets, run_references
from .run import Candidate, RunSummary, enqueue, prepare, run_study
from .storage import open_storage, open_study, repair_journal, study_lock
from .worker import Worker, reap_stale

__all__ = ["OBJECTIVES", "Candidate", "Exploration", "explore", "FrontPoint", "RunSummary", "RunningTrial", "Snapshot", "StudyConfig",
           "StudyError", "Worker", "enqueue", "load_config", "open_storage", "open_study", "prepare", "reap_stale",
           "redact", "reference_nets", "repair_journal", "resolve", "run_references", "run_study", "snapshot",
           "study_lock"]
