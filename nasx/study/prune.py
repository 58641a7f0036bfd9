"""Early stopping for multi-objective studies, where Optuna's pruners refuse to work.

The rule: after epoch e (min_epoch <= e < the last epoch), stop a trial when at least `min_peers`
completed trials that cost no more FLOPs than it (times 1 + `slack`) are known at epoch e, and its
validation accuracy at epoch e is below the `quantile`-th quantile of theirs. A trial so stopped is
beaten, at equal training, by nets that are no more expensive: unless its learning curve crosses
theirs later, it is dominated and could not reach the accuracy-vs-FLOPs front. Cheap nets are never
pruned by expensive ones, so the cheap end of the front is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

__all__ = ["PruneRule", "quantile"]


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), without numpy."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class PruneRule:
    """Prune below the `quantile` of >= `min_peers` no-more-expensive completed trials at the same epoch."""

    quantile: float = 0.5
    min_peers: int = 3
    min_epoch: int = 1
    slack: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.quantile < 1:
            raise ValueError(f"prune quantile {self.quantile} must lie in (0, 1)")
        if self.min_peers < 1 or self.min_epoch < 1 or self.slack < 0:
            raise ValueError("prune min_peers and min_epoch must be >= 1, slack >= 0")

    def check(self, epoch: int, epochs: int, acc: float, flops: int,
              peers: Iterable[tuple[int, Sequence[float]]]) -> Optional[str]:
        """A reason to stop now, or None. `peers` are (flops, per-epoch val accuracies) of completed trials."""
        if epoch < self.min_epoch or epoch >= epochs:
            return None
        limit = flops * (1 + self.slack)
        at_epoch = [curve[epoch - 1] for f, curve in peers if f <= limit and len(curve) >= epoch]
        if len(at_epoch) < self.min_peers:
            return None
        bar = quantile(at_epoch, self.quantile)
        if acc < bar:
            return (f"val acc {acc:.4f} after epoch {epoch} is below the {self.quantile:g} quantile "
                    f"({bar:.4f}) of {len(at_epoch)} completed trials with no more FLOPs")
        return None
