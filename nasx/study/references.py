"""Zoo nets as measured references of a study: the named nets that fit its input and lie in or near its band,
trained under the same proxy, seed and split, in a companion study `<study>-zoo` (once; reused on resume)."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from ..net.complexity import complexity
from ..net.fit import InputShape
from ..net.spec import NetSpec
from .config import StudyConfig
from .progress import Snapshot
from .run import Candidate, RunSummary, run_study

__all__ = ["reference_nets", "references_config", "run_references", "NEAR"]

NEAR = 1.5  # "near the band": within this factor of its ends


def reference_nets(shape: InputShape, band: Optional[tuple[int, int]], near: float = NEAR) -> list[tuple[str, NetSpec]]:
    """(name, fitted spec) of the zoo nets made for inputs like `shape` (CIFAR-sized below 100 px, else ImageNet)
    whose FLOPs at that input lie within `near` x the band's ends (every such net when there is no band)."""
    from ..net.zoo import fitting

    nets = []
    for name, spec in fitting(shape):
        flops = complexity(spec).flops
        if band is None or band[0] / near <= flops <= band[1] * near:
            nets.append((name, spec))
    return sorted(nets, key=lambda item: complexity(item[1]).flops)


def references_config(cfg: StudyConfig) -> StudyConfig:
    """The companion study: same storage, dataset, split, seed and proxy budget; fixed candidates, no pruning."""
    return dataclasses.replace(cfg, study=f"{cfg.name}-zoo", storage=cfg.storage_url, fixed=True, prune=False,
                               trials=None, max_trials=None, workers=1, timeout=None, sampler="random")


def run_references(cfg: StudyConfig, nets: list[tuple[str, NetSpec]],
                   progress: Callable[[Snapshot], None] | None = None,
                   on_note: Optional[Callable[[str], None]] = None, train_fn: Optional[Callable] = None) -> RunSummary:
    """Train the reference nets not trained yet (tagged with their zoo names) in the companion study."""
    candidates = [Candidate(spec, seed=cfg.seed, tags={"zoo": name}) for name, spec in nets]
    return run_study(references_config(cfg), progress=progress, candidates=candidates, on_note=on_note,
                     train_fn=train_fn)
