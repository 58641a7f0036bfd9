"""Checkpoints of a study in continue mode: each rung trial's pre-decay state (the trainer's `pre_decay`) beside
the study, `<study>.ckpt/<trial>.pt`, so that a promotion trains on from it instead of retraining.

Written atomically (a temporary file renamed into place) only while the folder stays under its size cap; read
only after the file's sha256 equals the one its trial record stores, then with `torch.load(weights_only=True)`
(no code runs from the file), the net, seed and top budget it claims checked by the trainer. Removed once its net
can no longer be promoted (promoted and trained on, or passed over in a closed rung) and at the study's end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..train.budget import Ladder
from .record import COMPLETE, RUNNING, WAITING, TrialRecord
from .rungs import rung_standing

__all__ = ["save", "load", "removable", "prune", "remove_all"]

_FILE = re.compile(r"\d+\.pt")


def save(folder: Path, number: int, state: Mapping[str, Any], cap: int) -> tuple[Optional[dict], Optional[str]]:
    """Write trial `number`'s state: (the record's `checkpoint` field, None), or (None, why none was written: the
    folder would pass `cap` bytes)."""
    import torch

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    held = sum(p.stat().st_size for p in folder.glob("*.pt") if p.is_file())
    if held + len(data) > cap:
        return None, (f"no checkpoint kept: {held / 1e6:.0f} MB held + {len(data) / 1e6:.1f} MB would pass the cap of "
                      f"{cap / 1e6:.0f} MB")
    tmp = folder / f".{number}.pt.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / f"{number}.pt")
    return {"file": f"{number}.pt", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "step": int(state["step"])}, None


def load(folder: Path, ref: Optional[Mapping[str, Any]]) -> tuple[Optional[dict], Optional[str]]:
    """The state a trial record's `checkpoint` field names: (state, None), or (None, why it cannot be used: none
    kept, not reachable here, or failing its check)."""
    import torch

    if not ref or not isinstance(ref.get("file"), str) or not _FILE.fullmatch(ref["file"]):
        return None, "its rung's trial kept no checkpoint"
    path = folder / ref["file"]
    try:
        data = path.read_bytes()
    except OSError:
        return None, f"checkpoint {path} is not reachable from this worker (removed, or another machine's disk)"
    if hashlib.sha256(data).hexdigest() != ref.get("sha256"):
        return None, f"checkpoint {path} fails its check (its sha256 is not the one its trial stored)"
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - a file that is not a checkpoint of ours
        return None, f"checkpoint {path} cannot be read ({type(e).__name__})"
    if not isinstance(state, dict) or state.get("step") != ref.get("step"):
        return None, f"checkpoint {path} is not at the step its trial stored"
    return state, None


def removable(records: Sequence[TrialRecord], ladder: Ladder, trials: int, predict: bool = False) -> set[int]:
    """Numbers of the trials whose checkpoints no promotion can use any more: their net trained on at the next rung
    (a complete trial there), or their rung is closed (nothing runs or is queued at it or below, every net has been
    started at the lowest rung, and no promotion into it is due) and they are not due for promotion (ranked as the
    study ranks, `predict` as in rungs.rung_standing)."""
    at: dict[int, list[TrialRecord]] = defaultdict(list)
    for r in records:
        if r.rung is not None:
            at[r.rung].append(r)
    out: set[int] = set()
    closed = sum(1 for r in at[0] if r.state in (COMPLETE, RUNNING, WAITING)) >= trials
    for k in range(ladder.top):
        closed = closed and not any(r.state in (RUNNING, WAITING) for r in at[k])
        standing = rung_standing(records, ladder, k, predict)
        trained_on = {r.spec_id for r in at[k + 1] if r.state == COMPLETE}
        due = set(standing.due(ladder.eta))
        for r in at[k]:
            if r.checkpoint is None:
                continue
            if r.spec_id in trained_on or (closed and r.spec_id not in due and r.spec_id not in standing.taken) or \
                    r.state not in (COMPLETE, RUNNING):
                out.add(r.number)
        closed = closed and not due
    out.update(r.number for r in records if r.checkpoint is not None and r.rung == ladder.top)
    return out


def prune(folder: Path, records: Sequence[TrialRecord], ladder: Ladder, trials: int,
          predict: bool = False) -> list[str]:
    """Remove the checkpoints `removable` names, and files no complete or running trial claims; return their names."""
    drop = removable(records, ladder, trials, predict)
    claimed = {r.checkpoint.get("file") for r in records
               if r.checkpoint and r.number not in drop and r.state in (COMPLETE, RUNNING)}
    running = {f"{r.number}.pt" for r in records if r.state == RUNNING}  # may be writing its file now
    gone = []
    if not folder.is_dir():
        return gone
    for path in folder.glob("*.pt"):
        if path.name not in claimed and path.name not in running:
            with contextlib.suppress(OSError):
                path.unlink()
                gone.append(path.name)
    return sorted(gone)


def remove_all(folder: Path) -> None:
    """At the study's end: the whole folder (every net's promotions are decided)."""
    if folder.is_dir() and folder.name.endswith(".ckpt"):
        shutil.rmtree(folder, ignore_errors=True)
