"""The RegNet rule: per-stage depths, widths and group widths from (d, w_0, w_a, w_m, group width), and back.

Radosavovic et al. 2020, Sec. 3.3: block j of d has the width u_j = w_0 + w_a * j, quantized in log space
to w_0 * w_m^k_j with k_j = round(log_{w_m}(u_j / w_0)) and rounded to a multiple of 8; blocks of one
width form a stage. The widths are then made compatible with the group width (torchvision's
`BlockParams.from_init_params` and `_adjust_widths_groups_compatibilty`, which follow pycls). Pure
arithmetic: nothing here builds or counts a net.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Callable, Iterable, Sequence

from .spec import AggregatedBlock, SpecError, Stage

__all__ = ["QUANTUM", "RegNetParams", "RuleStage", "block_exponents", "make_divisible", "regnet_widths",
           "regnet_stages", "rule_parameters"]

QUANTUM = 8  # block widths are multiples of 8; so must w_0 be


@dataclass(frozen=True)
class RuleStage:
    """One stage the rule gives: `depth` blocks of `width` output channels, grouped convs of `group_width`."""

    depth: int
    width: int
    group_width: int


@dataclass(frozen=True)
class RegNetParams:
    """The rule's parameters: d blocks in all, initial width w_0, slope w_a, width multiplier w_m,
    group width and bottleneck ratio (RegNetX: 1)."""

    depth: int
    w_0: int
    w_a: float
    w_m: float
    group_width: int
    bottleneck_ratio: float = 1.0

    def check(self) -> None:
        """SpecError naming the first parameter the rule cannot take (torchvision's own checks)."""
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise SpecError(f"depth: {self.depth!r} must be an integer >= 1")
        if isinstance(self.w_0, bool) or not isinstance(self.w_0, int) or self.w_0 < 1 or self.w_0 % QUANTUM:
            raise SpecError(f"w_0: {self.w_0!r} must be a positive multiple of {QUANTUM}")
        if not self.w_a >= 0:
            raise SpecError(f"w_a: {self.w_a!r} must be >= 0")
        if not self.w_m > 1:
            raise SpecError(f"w_m: {self.w_m!r} must be > 1")
        if isinstance(self.group_width, bool) or not isinstance(self.group_width, int) or self.group_width < 1:
            raise SpecError(f"group_width: {self.group_width!r} must be an integer >= 1")
        if not self.bottleneck_ratio > 0:
            raise SpecError(f"bottleneck_ratio: {self.bottleneck_ratio!r} must be > 0")

    def exponents(self) -> tuple[int, ...]:
        return block_exponents(self.depth, self.w_0, self.w_a, self.w_m)

    def stages(self) -> tuple[RuleStage, ...]:
        return regnet_widths(self.depth, self.w_0, self.w_a, self.w_m, self.group_width, self.bottleneck_ratio)

    def whole(self) -> bool:
        """Every power of w_m up to the largest gives a stage of its own (pycls's sweeps keep only these:
        `num_stages == max_stage`); false when the slope skips a power or two powers round to one width."""
        return len(self.stages()) == max(self.exponents()) + 1


def block_exponents(depth: int, w_0: int, w_a: float, w_m: float) -> tuple[int, ...]:
    """k_j = round(log(u_j / w_0) / log(w_m)) for the blocks j = 0 .. d-1, u_j = w_0 + w_a * j."""
    return tuple(round(math.log((w_0 + w_a * j) / w_0) / math.log(w_m)) for j in range(depth))


def make_divisible(v: float, divisor: int) -> int:
    """The nearest multiple of `divisor` (at least `divisor`), one more if that loses over 10% of v
    (torchvision's `_make_divisible`, from TensorFlow's MobileNet)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def regnet_widths(depth: int, w_0: int, w_a: float, w_m: float, group_width: int,
                  bottleneck_ratio: float = 1.0) -> tuple[RuleStage, ...]:
    """Per-stage (depth, width, group width) of the RegNet with these parameters, as torchvision builds it.

    Block widths w_0 * w_m^k_j rounded to multiples of 8; runs of equal width are stages; then each
    stage's bottleneck width w * b is rounded to a multiple of its group width min(g, w * b) and the
    stage width follows from it. Floats are doubles (pycls's numpy); torchvision computes in float32,
    which can differ only where a value falls within float32 rounding of a .5 (the reference test
    checks the two agree on the zoo nets and on random parameters).
    """
    RegNetParams(depth, w_0, w_a, w_m, group_width, bottleneck_ratio).check()
    widths = [round(w_0 * w_m**k / QUANTUM) * QUANTUM for k in block_exponents(depth, w_0, w_a, w_m)]
    runs: list[list[int]] = []  # [width, depth]
    for w in widths:
        if runs and runs[-1][0] == w:
            runs[-1][1] += 1
        else:
            runs.append([w, 1])
    stages = []
    for w, d in runs:
        w_b = int(w * bottleneck_ratio)
        g = min(group_width, w_b)
        stages.append(RuleStage(d, int(make_divisible(w_b, g) / bottleneck_ratio), g))
    return tuple(stages)


def regnet_stages(params: RegNetParams, strides: tuple[int, ...] = (2,)) -> tuple[Stage, ...]:
    """The rule's stages as nasx Stages of aggregated blocks: w_b = round(width * b), cardinality
    w_b / group width; `strides` per stage position, the last repeating (torchvision: 2 everywhere)."""
    stages = []
    for i, st in enumerate(params.stages()):
        w_b = int(round(st.width * params.bottleneck_ratio))
        if w_b % st.group_width:
            raise SpecError(f"stage {i + 1}: bottleneck width {w_b} is not a multiple of group width {st.group_width}")
        block = AggregatedBlock(cardinality=w_b // st.group_width, group_width=st.group_width)
        stages.append(Stage(depth=st.depth, width=st.width, block=block, stride=strides[min(i, len(strides) - 1)]))
    return tuple(stages)


Interval = tuple[float, float]


def rule_parameters(stages: Sequence[RuleStage], *, group_widths: Iterable[int], w_0: Callable[[int], bool],
                    w_a: Sequence[Interval], w_m: Sequence[Interval], bottleneck_ratio: float = 1.0,
                    ) -> RegNetParams | None:
    """Parameters whose rule gives exactly these stages, each power of w_m a stage of its own (`whole`), with
    the group width among `group_widths`, w_0 accepted by `w_0`, and w_a, w_m inside one of their [low, high]
    intervals (a range, or a point per allowed value); or None.

    Given g and each stage's width before the group-width adjustment (a few multiples of 8 each), stage i's
    width confines w_m to an interval (w_0 * w_m^(i-1) must round to it), and the stage boundaries confine
    r = w_a / w_0 between bounds that rise with w_m: w_m^(i-1.5) <= 1 + r * j < w_m^(i-0.5) for the blocks j
    of stage i. w_m is searched on that interval for the widest gap between the bounds (a grid, then a
    golden-section refinement), and an answer is checked by running the rule forward: a spec the rule
    cannot give is never called a member (tests/net/test_regnet.py finds every one of random rule outputs).
    """
    stages = tuple(stages)
    if not stages:
        return None
    depth = sum(st.depth for st in stages)
    firsts = [sum(st.depth for st in stages[:i]) for i in range(len(stages))]  # block index j of each first block
    for g in sorted(set(group_widths)):
        options = [_pre_widths(st, g, bottleneck_ratio) for st in stages]
        for w0 in options[0]:
            if not w_0(w0):
                continue
            for (m_lo, m_hi), slopes in product(w_m, w_a):
                for lo, hi in _windows(options, w0, max(m_lo, 1 + 1e-12), m_hi):
                    params = _search_slope(stages, firsts, depth, w0, g, bottleneck_ratio, slopes, lo, hi)
                    if params is not None:
                        return params
    return None


def _windows(options: list[list[int]], w0: int, lo: float, hi: float):
    """The w_m intervals inside [lo, hi] where w0 * w_m^k rounds to one of stage k+1's pre-adjustment widths, for
    every stage (depth-first over the stages' options, each narrowing the interval)."""
    def walk(k: int, lo: float, hi: float, prev: int):
        if k == len(options):
            # inside: at an end, a width rounds from an exact .5 (a point is searched as it is)
            yield (lo * (1 + 1e-9), hi * (1 - 1e-9)) if hi - lo > 4e-9 * hi else (lo, hi)
            return
        for p in options[k]:
            if p <= prev:
                continue
            a = max(lo, ((p - QUANTUM / 2) / w0) ** (1 / k))  # round(w0 * w_m^k / 8) * 8 == p
            b = min(hi, ((p + QUANTUM / 2) / w0) ** (1 / k))
            if a <= b:
                yield from walk(k + 1, a, b, p)

    yield from walk(1, lo, hi, w0)


def _search_slope(stages: tuple[RuleStage, ...], firsts: list[int], depth: int, w0: int, g: int,
                  bottleneck_ratio: float, w_a: Interval, lo: float, hi: float) -> RegNetParams | None:
    """The w_m in [lo, hi] with the widest room for r = w_a / w0 between the bounds the stage boundaries set,
    and r in the middle of it, if the rule then gives the stages."""
    def gap(m: float) -> tuple[float, float, float]:
        low, high = w_a[0] / w0, w_a[1] / w0
        for k, (first, st) in enumerate(zip(firsts, stages)):
            if k:
                low = max(low, (m ** (k - 0.5) - 1) / first)
            last = first + st.depth - 1
            if last:
                high = min(high, (m ** (k + 0.5) - 1) / last)
        return high - low, low, high

    best = max((lo + (hi - lo) * t / 32 for t in range(33)), key=lambda m: gap(m)[0])
    step = (hi - lo) / 32
    while step > 1e-12 * hi:  # golden-section refinement around the best grid point
        left, right = max(lo, best - 0.382 * step), min(hi, best + 0.382 * step)
        best = max((best, left, right), key=lambda m: gap(m)[0])
        step *= 0.618
    width, low, high = gap(best)
    if width < 0:
        return None
    params = RegNetParams(depth, w0, (low + high) / 2 * w0, best, g, bottleneck_ratio)
    return params if params.stages() == stages and params.whole() else None


def _pre_widths(stage: RuleStage, g: int, bottleneck_ratio: float) -> list[int]:
    """The multiples of 8 that the group-width adjustment turns into this stage's (width, group width)."""
    w_b = stage.width * bottleneck_ratio
    low = max(QUANTUM, int((w_b - 2 * g) / bottleneck_ratio) // QUANTUM * QUANTUM)
    high = int((w_b + 2 * g) / bottleneck_ratio) + QUANTUM
    out = []
    for p in range(low, high + 1, QUANTUM):
        v = int(p * bottleneck_ratio)
        if v < 1:
            continue
        g_p = min(g, v)
        if g_p == stage.group_width and int(make_divisible(v, g_p) / bottleneck_ratio) == stage.width:
            out.append(p)
    return out
