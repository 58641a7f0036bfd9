"""A fixed-set study: draw N nets i.i.d. from a space in a band, then run them as a fixed study (each net once,
with the study's seed). `nasx edf` and every round of `nasx refine` are this."""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from ..net.spec import NetSpec
from ..space import Space
from ..space.sampling import sample
from .config import StudyConfig
from .progress import Snapshot
from .run import Candidate, RunSummary, run_study
from .storage import no_empty_journal

__all__ = ["draw", "run_fixed"]


def draw(space: Space, n: int, rng: np.random.Generator | int | None, flops: Optional[tuple[int, int]] = None,
         params: Optional[tuple[int, int]] = None) -> list[NetSpec]:
    """n distinct members of `space` (at its input) drawn i.i.d. inside the band (default: the space's);
    SpaceError when the band is unreachable or fewer than n distinct members fit."""
    return [s.spec for s in sample(space, rng, n, flops=flops, params=params)]


def run_fixed(cfg: StudyConfig, nets: Sequence[NetSpec], *, tags: Optional[Mapping] = None,
              seed: Optional[int] = None, index_tag: Optional[str] = None,
              progress: Optional[Callable[[Snapshot], None]] = None, on_note: Optional[Callable[[str], None]] = None,
              train_fn: Optional[Callable] = None) -> RunSummary:
    """Run (or resume) `nets` as the fixed study `cfg.study`, each once with `seed` (default `cfg.seed`; the split
    keeps `cfg.seed`) and `tags` in its record, plus its place in `nets` under `index_tag` when given; a start
    refused by a check leaves no empty journal behind."""
    seed = cfg.seed if seed is None else seed

    def tagged(i: int) -> dict:
        return {**(tags or {}), index_tag: i} if index_tag is not None else dict(tags or {})

    with no_empty_journal(cfg.storage_url):
        return run_study(cfg, progress=progress, train_fn=train_fn, on_note=on_note,
                         candidates=[Candidate(spec, seed=seed, tags=tagged(i)) for i, spec in enumerate(nets)])
