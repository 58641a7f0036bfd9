"""Draw members of a space inside a FLOPs/params band: i.i.d. (`sample`) or from an Optuna trial (`suggest`).

Both draw the structural choices first (depths, branch types, cardinality, ...; the raw widths
give the net's shape), then solve one width scale so that the analytic count lands on a target
inside the band, round every width to a legal value, and re-check the exact count. Nothing is built.
In a rule space (`rule: regnet`) the rule's d, w_m, group width and slope ratio w_a / w_0 are the
structure, and the scale solved is w_0's (w_a following it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..units import human
from ..net.complexity import Complexity, complexity
from ..net.regnet import QUANTUM, RegNetParams, regnet_stages
from .parse import INCEPTION_WIDTHS, RULE_PARAMETERS, Dist, PerStage, Space, SpaceError
from ..net.spec import (AggregatedBlock, Head, InceptionBlock, MultiBranchBlock, NetSpec, PlainBlock, ResidualBlock,
                       SpecError, Stage, Stem)

__all__ = ["Sample", "SampleRun", "Draft", "RuleDraft", "Rejected", "draft", "solve", "sample", "suggest",
           "resolve_band", "default_band", "in_band_share"]

Draw = Callable[[str, Dist], Any]  # (parameter name, distribution) -> value


@dataclass(frozen=True)
class Sample:
    """One accepted member and its analytic counts."""

    spec: NetSpec
    complexity: Complexity

    def to_dict(self) -> dict[str, Any]:
        cx = self.complexity
        return {"id": self.spec.id, "flops": cx.flops, "params": cx.params, "acts": cx.acts,
                "resolution": cx.resolution, "description": self.spec.describe(), "spec": self.spec.to_dict()}


@dataclass
class SampleRun:
    """The accepted samples, how many draws it took, and why the others were rejected."""

    samples: list[Sample]
    draws: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def acceptance(self) -> float:
        return len(self.samples) / self.draws if self.draws else 0.0

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]


# ---------------------------------------------------------------------------------------------
# A drawn structure whose widths are still free


@dataclass
class _StageDraft:
    depth: int
    branch: str
    stride: int
    pool: Any
    fields: dict[str, Any]  # the block's structural fields
    raw_width: float | None  # None: a plain inception stage (its branches' sum) or a non-residual multibranch one (its concatenation)
    raw_branches: dict[str, float]  # inception branch widths
    quantum: int  # the width must be a multiple of it (aggregated: cardinality and group width)


@dataclass
class Draft:
    """The structural choices of one member; `widths(scale)` and `spec(key)` finish it."""

    space: Space
    stem_kind: str
    stem_raw: float | None
    mid_raw: float | None
    head: dict[str, Any]
    stages: list[_StageDraft]

    def scale_range(self) -> tuple[float, float]:
        """Log-scales below/above which every width sits at its minimum/maximum."""
        pairs = []
        sp = self.space
        if self.stem_raw is not None:
            pairs.append((self.stem_raw, sp.stem["width"]))
        if self.mid_raw is not None:
            pairs.append((self.mid_raw, sp.stem["mid_width"]))
        for st in self.stages:
            if st.raw_width is not None:
                pairs.append((st.raw_width, sp.stages["width"]))
            for name, raw in st.raw_branches.items():
                pairs.append((raw, sp.blocks["inception"][name]))
        if not pairs:
            return 0.0, 0.0
        lo = min(math.log(d.low / r) for r, d in pairs)
        hi = max(math.log(d.high / r) for r, d in pairs)
        return lo - 0.05, hi + 0.05

    def widths(self, log_scale: float) -> tuple | None:
        """Every width at this scale, rounded to legal values: (stem, mid, per stage (width, branches))."""
        sp, s = self.space, math.exp(log_scale)
        tie = sp.tied("width")
        drawn = [st for st in self.stages if st.raw_width is not None]
        base = None
        if drawn and tie in ("same", "double"):
            quantum = math.lcm(*(st.quantum for st in drawn))
            base = sp.stages["width"].nearest(drawn[0].raw_width * s, quantum)
            if base is None:
                return None
        stem = None
        if self.stem_raw is not None:
            stem = sp.stem["width"].nearest(self.stem_raw * s)
        mid = sp.stem["mid_width"].nearest(self.mid_raw * s) if self.mid_raw is not None else None
        out, w_in, prev, j = [], stem, None, 0
        for st in self.stages:
            branches = tuple(sp.blocks["inception"][c].nearest(st.raw_branches[c] * s) for c in INCEPTION_WIDTHS) \
                if st.raw_branches else ()
            if st.raw_width is None and st.branch == "multibranch":
                width = MultiBranchBlock(paths=st.fields["paths"]).w_concat(sp.in_channels if w_in is None else w_in)
            elif st.raw_width is None:
                c1x1, _, c3x3, _, c5x5, pool_proj = branches
                width = c1x1 + c3x3 + c5x5 + pool_proj
            else:
                if base is not None:
                    width = base * (2**j if tie == "double" else 1)
                else:
                    width = sp.stages["width"].nearest(st.raw_width * s, st.quantum)
                    if width is None:
                        return None
                    if tie == "non_decreasing" and prev is not None and width < prev:
                        width = -(-prev // st.quantum) * st.quantum
                if st.fields.get("shortcut") == "zeropad" and w_in is not None and width < w_in:
                    width = -(-w_in // st.quantum) * st.quantum  # zeropad cannot shrink the channels
                prev, j = width, j + 1
            if w_in is None:  # the stem's width follows stage 1 (tie stem_width: stage1) or is the input
                stem = width if sp.tied("stem_width") == "stage1" and self.stem_kind != "none" else stem
            out.append((width, branches))
            if st.depth > 0:
                w_in = width
        return stem, mid, tuple(out)

    def spec(self, key: tuple) -> NetSpec:
        """The NetSpec for a `widths` key (SpecError if the structure is impossible)."""
        sp = self.space
        stem_width, mid, widths = key
        if self.stem_kind == "none":
            stem = Stem("none", sp.in_channels)
        else:
            stem = Stem(self.stem_kind, stem_width, mid if self.stem_kind == "googlenet" else None)
        stages = []
        for st, (width, branches) in zip(self.stages, widths):
            stages.append(Stage(depth=st.depth, width=width, block=_block(st, width, branches), stride=st.stride,
                                pool=st.pool))
        return NetSpec(stem=stem, stages=tuple(stages), head=Head(**self.head), in_channels=sp.in_channels,
                       num_classes=sp.num_classes, resolution=sp.resolution)


@dataclass
class RuleDraft:
    """The RegNet rule's drawn structure: d, w_m, group width, bottleneck ratio, and the slope as the ratio
    r = w_a / w_0, which fixes every block's power of w_m (so the stage depths); `widths(scale)` picks w_0
    (a legal multiple of 8) with w_a = r * w_0, or the drawn w_a where its distribution is discrete. The
    stem is drawn as it is (not scaled)."""

    space: Space
    stem: Stem
    head: dict[str, Any]
    depth: int
    w_0: float  # as drawn: the scale solves the net's
    w_a: float
    w_m: float
    group_width: int
    bottleneck_ratio: float

    @cached_property
    def candidates(self) -> tuple[tuple[int, float], ...]:
        """Every legal (w_0, w_a) of this draw, by w_0."""
        rule, out = self.space.rule, []
        for w_0 in rule.w_0_values():
            w_a = self.w_a / self.w_0 * w_0 if rule.w_a.support() is None else self.w_a  # continuous: scaled
            if rule.w_a.holds(w_a):
                out.append((w_0, w_a))
        return tuple(out)

    def scale_range(self) -> tuple[float, float]:
        """Log-scales at and beyond which w_0 is its smallest / largest legal value."""
        found = self.candidates
        if not found:
            return 0.0, 0.0
        return math.log(found[0][0] / self.w_0) - 0.05, math.log(found[-1][0] / self.w_0) + 0.05

    def widths(self, log_scale: float) -> tuple[int, float] | None:
        """The legal (w_0, w_a) whose w_0 is nearest (in log scale) to the drawn w_0 times e^log_scale."""
        found = self.candidates
        if not found:
            return None
        x = math.log(self.w_0) + log_scale
        return min(found, key=lambda c: abs(math.log(c[0]) - x))

    def params(self, key: tuple[int, float]) -> RegNetParams:
        return RegNetParams(self.depth, key[0], key[1], self.w_m, self.group_width, self.bottleneck_ratio)

    def spec(self, key: tuple[int, float]) -> NetSpec:
        """The NetSpec the rule gives at this (w_0, w_a) (SpecError if nasx cannot build its stages)."""
        sp, rule = self.space, self.space.rule
        params = self.params(key)
        strides = tuple(rule.stride_at(i) for i in range(len(params.stages())))
        return NetSpec(stem=self.stem, stages=regnet_stages(params, strides), head=Head(**self.head),
                       in_channels=sp.in_channels, num_classes=sp.num_classes, resolution=sp.resolution)


def _block(st: _StageDraft, width: int, branches: tuple):
    f = st.fields
    if st.branch == "plain":
        return PlainBlock(kernel=f["kernel"], bn=f["bn"], bias=f["bias"])
    if st.branch == "residual":
        return ResidualBlock(kind=f["kind"], bottleneck_ratio=float(f["bottleneck_ratio"]), shortcut=f["shortcut"])
    if st.branch == "aggregated":
        cardinality = f["cardinality"]
        return AggregatedBlock(cardinality=cardinality, group_width=round(width * f["bottleneck_ratio"]) // cardinality,
                               shortcut=f["shortcut"])
    if st.branch == "multibranch":
        return MultiBranchBlock(paths=f["paths"], residual=f["residual"], scale=float(f["scale"]),
                                activation=f["activation"])
    return InceptionBlock(**dict(zip(INCEPTION_WIDTHS, branches)), kernel_5x5=f["kernel_5x5"], residual=f["residual"],
                          factorize=f["factorize"], n=f["n"] if f["factorize"] == "asymmetric" else 7,
                          pool_kind=f["pool_kind"], scale=float(f["scale"]) if f["residual"] else 1.0)


def _aggregated_quantum(cardinality: int, bottleneck_ratio: float) -> int:
    """Smallest width w with w % cardinality == 0 and w * bottleneck_ratio an integer multiple of cardinality."""
    for k in range(1, 4097):
        w = k * cardinality
        w_b = w * bottleneck_ratio
        if abs(w_b - round(w_b)) < 1e-9 and round(w_b) % cardinality == 0 and round(w_b) > 0:
            return w
    return 4096 * cardinality


# long (~70 lines): one pass over the file's choices in the order a trial suggests them (the Optuna parameter
# names and the i.i.d. stream depend on that order); split, the order would be spread over helpers
def draft(space: Space, draw: Draw) -> Draft | RuleDraft:
    """Draw a member's structure (everything but the width scale); `draw` is i.i.d. or an Optuna trial.

    Raises Rejected for a rule draw whose layout the space excludes whatever the scale (its stage count,
    or a power of w_m that no block reaches: pycls's sweeps keep only nets with every power a stage)."""
    sp = space
    if sp.rule is not None:
        return _rule_draft(sp, draw)
    stem_kind = draw("stem.kind", sp.stem["kind"])
    stem_raw = mid_raw = None
    if stem_kind != "none" and sp.tied("stem_width") != "stage1":
        stem_raw = float(draw("stem.width", sp.stem["width"]))
    if stem_kind == "googlenet":
        mid_raw = float(draw("stem.mid_width", sp.stem["mid_width"]))
    head = {k: draw(f"head.{k}", d) for k, d in sp.head.items()}
    count = draw("stages", sp.stages["count"])
    names = [f"stage{i + 1}" for i in range(count)]
    depth_tie = sp.tied("depth")
    if depth_tie == "same":
        depths = [draw("depth", sp.stages["depth"])] * count
    else:
        depths = [draw(f"{n}.depth", sp.stages["depth"]) for n in names]
        if depth_tie == "non_decreasing":
            depths.sort()
    shared: dict[str, Any] = {}

    def field_value(branch: str, name: str, where: str, index: int) -> Any:
        dist = sp.blocks[branch][name]
        if isinstance(dist, PerStage):
            return dist.at(index)  # placed, not drawn
        if sp.tied(name) == "same":
            key = f"{branch}.{name}"
            if key not in shared:
                shared[key] = draw(key, dist)
            return shared[key]
        return draw(f"{where}.{name}", dist)

    stages = []
    for i, where in enumerate(names):
        branch = draw(f"{where}.branch", sp.stages["branch"])
        placed = {}
        for key in ("stride", "pool"):
            p = sp.placement(branch, key, i)
            placed[key] = draw(f"{where}.{key}", p) if isinstance(p, Dist) else p
        structural = list(sp.structural_fields(branch))
        fields = {}
        for name in structural:
            if branch == "residual" and name == "bottleneck_ratio" and fields.get("kind") != "bottleneck":
                fields[name] = 0.25  # irrelevant to a basic block: the spec's default keeps ids canonical
                continue
            if branch == "multibranch" and name in ("scale", "activation") and not fields["residual"]:
                fields[name] = 1.0 if name == "scale" else True  # the residual form's: the spec's defaults
                continue
            fields[name] = field_value(branch, name, where, i)
        quantum = 1
        if branch == "aggregated":
            quantum = _aggregated_quantum(fields["cardinality"], fields["bottleneck_ratio"])
        raw_branches = {}
        if branch == "inception":
            raw_branches = {c: float(draw(f"{where}.{c}", sp.blocks["inception"][c])) for c in INCEPTION_WIDTHS}
        plain_inception = branch in ("inception", "multibranch") and not fields["residual"]
        stages.append(_StageDraft(depth=depths[i], branch=branch, stride=placed["stride"], pool=placed["pool"],
                                  fields=fields, raw_width=None if plain_inception else 0.0,
                                  raw_branches=raw_branches, quantum=quantum))
    drawn = [st for st in stages if st.raw_width is not None]
    if sp.tied("width") in ("same", "double"):
        raws = [float(draw("width", sp.stages["width"]))] * len(drawn)
    else:
        raws = [float(draw(f"{names[stages.index(st)]}.width", sp.stages["width"])) for st in drawn]
        if sp.tied("width") == "non_decreasing":
            raws.sort()
    for st, raw in zip(drawn, raws):
        st.raw_width = raw
    return Draft(space=sp, stem_kind=stem_kind, stem_raw=stem_raw, mid_raw=mid_raw, head=head, stages=stages)


def _rule_draft(sp: Space, draw: Draw) -> RuleDraft:
    rule = sp.rule
    stem_kind = draw("stem.kind", sp.stem["kind"])
    if stem_kind == "none":
        stem = Stem("none", sp.in_channels)
    else:
        stem = Stem(stem_kind, draw("stem.width", sp.stem["width"]),
                    draw("stem.mid_width", sp.stem["mid_width"]) if stem_kind == "googlenet" else None)
    head = {k: draw(f"head.{k}", d) for k, d in sp.head.items()}
    d = RuleDraft(space=sp, stem=stem, head=head, **{name: draw(name, getattr(rule, name)) for name in RULE_PARAMETERS})
    if rule.w_a.support() is None:  # w_a scales with w_0: the powers of w_m reached are the same at every scale
        exponents = RegNetParams(d.depth, QUANTUM, d.w_a / d.w_0 * QUANTUM, d.w_m, d.group_width).exponents()
        if not rule.count.holds(len(set(exponents))):
            raise Rejected("stage count")
        if len(set(exponents)) != max(exponents) + 1:
            raise Rejected("a power of w_m skipped")
    return d


# ---------------------------------------------------------------------------------------------
# Solving the width scale


@dataclass(frozen=True)
class Bands:
    """The FLOPs and params bands (None: unconstrained) and which of them the scale is solved for."""

    flops: tuple[int, int] | None
    params: tuple[int, int] | None

    @property
    def metric(self) -> str | None:
        return "flops" if self.flops else "params" if self.params else None

    @property
    def band(self) -> tuple[int, int] | None:
        return self.flops or self.params

    def holds(self, cx: Complexity) -> bool:
        return all(b is None or b[0] <= getattr(cx, k) <= b[1] for k, b in (("flops", self.flops), ("params", self.params)))


def resolve_band(space: Space, flops=None, params=None) -> Bands:
    """The requested bands, or the space's defaults when neither is given."""
    from .parse import parse_band

    if flops is None and params is None:
        return Bands(space.flops, space.params)
    return Bands(parse_band(flops, "flops") if flops is not None else None,
                 parse_band(params, "params") if params is not None else None)


def default_band(space: Space, flops: Optional[Sequence[int]] = None) -> Optional[tuple[int, int]]:
    """The FLOPs band asked for, else the space's own (None: it has none): the one rule for a default band."""
    return (int(flops[0]), int(flops[1])) if flops else space.flops


@dataclass
class Solved:
    """The outcome of solving one draft: a sample, or a rejection reason; the count span it can reach."""

    sample: Sample | None
    reason: str | None
    span: tuple[float, float] | None = None


# long (~65 lines): a bracketing root finder whose state (bracket, cache, best so far) its loop shares
def solve(d: Draft, bands: Bands, target: float | None) -> Solved:
    """Find the width scale whose rounded spec lands nearest `target` (in the solved metric) inside the bands."""
    cache: dict[tuple, tuple[NetSpec, Complexity] | None] = {}

    def at(x: float):
        key = d.widths(x)
        if key is None:
            return None
        if key not in cache:
            try:
                spec = d.spec(key)
                cache[key] = (spec, complexity(spec))
            except SpecError:
                cache[key] = None
        return cache[key]

    metric = bands.metric
    if metric is None:
        got = at(0.0)
        return Solved(Sample(*got), None) if got else Solved(None, "invalid")
    a, b = d.scale_range()
    lo_end, hi_end = at(a), at(b)
    if lo_end is None or hi_end is None:
        return Solved(None, "invalid")
    lo, hi = bands.band
    f_min, f_max = getattr(lo_end[1], metric), getattr(hi_end[1], metric)
    span = (f_min, f_max)
    if f_max < lo or f_min > hi:
        return Solved(None, "unreachable", span)
    log_t = math.log(target)
    tol = math.log(hi / lo) / 8
    best: tuple[float, tuple[NetSpec, Complexity]] | None = None

    def consider(got) -> float:
        nonlocal best
        g = math.log(max(getattr(got[1], metric), 1)) - log_t
        if bands.holds(got[1]) and (best is None or abs(g) < best[0]):
            best = (abs(g), got)
        return g

    ga, gb = consider(lo_end), consider(hi_end)
    side = 0
    for _ in range(40):  # Illinois regula falsi on log(count) - log(target) over the log scale
        if best is not None and best[0] <= tol or b - a < 1e-6 or gb <= 0 or ga >= 0:
            break
        x = b - gb * (b - a) / (gb - ga) if gb != ga else (a + b) / 2
        if not a < x < b:
            x = (a + b) / 2
        got = at(x)
        if got is None:
            return Solved(None, "invalid", span)
        g = consider(got)
        if g < 0:
            a, ga = x, g
            if side == -1:
                gb /= 2
            side = -1
        else:
            b, gb = x, g
            if side == 1:
                ga /= 2
            side = 1
    if best is None:
        return Solved(None, "out of band", span)
    return Solved(Sample(*best[1]), None, span)


# ---------------------------------------------------------------------------------------------
# The two ways to sample


def sample(space: Space, rng: np.random.Generator | int | None, n: int, flops=None, params=None, *,
           max_draws: int | None = None, probe: int = 300,
           on_accept: Callable[[Sample], None] | None = None) -> SampleRun:
    """n distinct members (by spec id) drawn i.i.d. with counts inside the bands (default: the space's).

    Raises SpaceError when `probe` draws in a row found no member in the band (it is unreachable),
    or when `max_draws` (default 50 n + 1000) draws gave fewer than n distinct members.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    bands = resolve_band(space, flops, params)
    max_draws = 50 * n + 1000 if max_draws is None else max_draws
    run = SampleRun(samples=[], draws=0)
    seen: set[str] = set()
    low, high = math.inf, 0.0
    draw_rng: Draw = lambda name, dist: dist.draw(rng)  # noqa: E731
    while len(run.samples) < n:
        if run.draws >= max_draws:
            raise SpaceError(f"{space.source}: only {len(run.samples)} of {n} distinct members "
                             f"{_band_text(bands)} after {run.draws} draws")
        if not run.samples and run.draws >= probe:
            spread = f"; the draws reach {human(low)}..{human(high)} {bands.metric}" if high else ""
            raise SpaceError(f"{space.source}: no member {_band_text(bands)} in {run.draws} draws "
                             f"(band unreachable{spread})")
        run.draws += 1
        try:
            d = draft(space, draw_rng)
        except Rejected as e:
            run.rejected[e.reason] = run.rejected.get(e.reason, 0) + 1
            continue
        target = None
        if bands.band:
            target = math.exp(rng.uniform(math.log(bands.band[0]), math.log(bands.band[1])))
        solved = solve(d, bands, target)
        if solved.span:
            low, high = min(low, solved.span[0]), max(high, solved.span[1])
        reason = solved.reason
        if solved.sample is not None:
            sid = solved.sample.spec.id
            if sid in seen:
                reason = "duplicate"
            elif space.why_not(solved.sample.spec) is not None:
                reason = "not a member after rounding"
        if reason:
            run.rejected[reason] = run.rejected.get(reason, 0) + 1
            continue
        seen.add(sid)
        run.samples.append(solved.sample)
        if on_accept is not None:
            on_accept(solved.sample)
    return run


class Rejected(Exception):
    """A drawn structure that cannot reach the band (or is not a member once its widths are solved)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def suggest(space: Space, trial, flops=None, params=None) -> Sample:
    """A member inside the bands from an Optuna trial: the trial suggests the structure and a log-uniform
    target count (`flops_target` or `params_target`); the widths are solved from them.

    Returns the Sample (spec and counts); a structure that cannot reach the band raises Rejected with the
    reason. Nothing is written to the trial here: the study records what it keeps.
    """
    bands = resolve_band(space, flops, params)
    try:
        d = draft(space, lambda name, dist: dist.suggest(trial, name))
    except Rejected as e:
        raise Rejected(f"{space.name}: {e.reason}") from None
    target = None
    if bands.band:
        target = trial.suggest_float(f"{bands.metric}_target", float(bands.band[0]), float(bands.band[1]), log=True)
    solved = solve(d, bands, target)
    reason = solved.reason
    if solved.sample is not None and reason is None:
        reason = space.why_not(solved.sample.spec)
    if reason is not None:
        raise Rejected(f"{space.name}: {reason}")
    return solved.sample


def in_band_share(space: Space, band: tuple[int, int], draws: int = 200, seed: int = 0) -> float:
    """Share of i.i.d. draws of the space whose solved widths land in the FLOPs band as a member (duplicates
    count: this measures the space, not a sample's distinctness)."""
    rng = np.random.default_rng(seed)
    bands = resolve_band(space, flops=band)
    lo, hi = bands.band
    hits = 0
    for _ in range(draws):
        d = draft(space, lambda name, dist: dist.draw(rng))
        solved = solve(d, bands, math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if solved.sample is not None and space.why_not(solved.sample.spec) is None:
            hits += 1
    return hits / draws



def _band_text(bands: Bands) -> str:
    parts = [f"with {k} in {human(b[0])}..{human(b[1])}" for k, b in (("FLOPs", bands.flops), ("params", bands.params)) if b]
    return " and ".join(parts) or "(no band)"
