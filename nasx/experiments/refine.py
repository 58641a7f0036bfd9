"""Let the data design the space (Radosavovic et al. 2019, 2020): test restrictions of a space on trained nets.

The papers' loop, done by hand there: sample nets from a space, train them on a cheap budget, compare the error
EDF of the nets that satisfy a restriction (shared bottleneck ratio, non-decreasing widths, a narrower range)
with the rest, keep the restriction when it is better, and repeat on the restricted space. Here:

    candidates   derived from the space file itself: a per-stage parameter shared across stages (`ties: f:
                 same`), a monotone tie (`ties: width/depth: non_decreasing`), a range cut to the lower or upper
                 part of an int/log_int/power_of_two/float range (the cut point is the distinct observed value that
                 leaves out the share of nets closest to `cut`, at most 1 - `cut` of them: chosen from the
                 structures, never from the errors) and the complementary cut at the same point, a `choice` value
                 dropped (a branch type, a shortcut kind)
    predicate    membership of the trained net in the edited space (`Space.contains`): the file that is written
                 and the nets that are judged can never disagree
    test         error = 1 - validation accuracy (the test split is never read); the nets that satisfy it against
                 the nets that do not at the same FLOPs: the OLS t of membership in error ~ FLOPs bin + log FLOPs
                 within bins + member (nets in one-sided bins left out), its one-sided p-value from permutations
                 within FLOPs bins, as many as the threshold needs (Besag-Clifford sequential stopping:
                 `nasx.stats.adjusted_shift_test`); the complexity-normalized EDFs' KS is shown beside it
    decision     greedy forward selection: in each step every candidate is tested on the nets of the current
                 space; the strongest one that is better (lower error), significant at alpha / 2^k / 2^s / m (round
                 k, step s, m candidates tested in it: the whole run's family-wise error rate stays below alpha),
                 removes at least `min_removed` of the nets and leaves a space that still samples at least
                 `min_in_band` of its draws in the band is kept; then the next step tests the rest among the nets
                 that satisfy it, until none is kept

`refine(records, space_data)` is that, pure (records in, decisions and the refined YAML out); `run_refine`
runs rounds of it as fixed, resumable studies (`nasx.study.fixed`) (`refine-<name>-r<k>`): sample the space, train, refine, write the
refined space file, sample that in the same band, and so on; a round that keeps nothing is followed by another
sample of the same space, judged together with the earlier ones (pooled). Its page is drawn by
`nasx.report.refine`. The restrictions and their candidates are edits of the space file (`nasx.space.edit`), the
in-band share is the sampler's (`nasx.space.sampling`), the statistics are pure (`nasx.stats`): this module selects
and runs rounds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import NasxError
from ..net.fit import InputShape, input_of
from ..net.spec import NetSpec, parse_yaml
from ..study.config import StudyError
from ..study.record import COMPLETE, TrialRecord
from ..study.store import StoredStudy, open_study
from ..space import Space, SpaceError, load_space, mapping_hash, parse_space
from ..space.edit import Restriction, candidates, dump, flat, flat_mapping, is_width, with_value
from ..space.sampling import default_band, in_band_share
from ..stats import MC_LEVEL, STOP_HITS, AdjustedShift, StratifiedKS, adjusted_shift_test, ks_stratified_test, log_bins, subset_shift
from ..train.budget import Budget
from ..units import exact

if TYPE_CHECKING:
    from ..study import StudyConfig

__all__ = ["RefineError", "RefineOptions", "Evaluation", "Refinement", "Round", "RefineRun", "MIN_NETS",
           "CORRECTIONS", "refine", "space_mapping", "run_refine", "round_study"]

MIN_NETS = 8  # complete nets a refinement needs at all
CORRECTIONS = ("spending", "bonferroni", "none")


class RefineError(NasxError, ValueError):
    """A refinement that cannot be done (too few complete nets, a rule space, another plan); one line."""


@dataclass(frozen=True)
class RefineOptions:
    """How candidates are tested and kept.

    Args:
        alpha: with "spending", the family-wise error rate of the whole run (every step of every round); else the
            level of each step's test family.
        correction: "spending" (round k, step s: each of its m candidates at alpha / 2^k / 2^s / m, so any number
            of rounds and steps spends less than alpha), "bonferroni" (each step's candidates at alpha / m: no
            control across steps or rounds) or "none".
        min_removed: a kept restriction leaves out at least this share of the step's nets.
        min_nets: a candidate is tested only when at least this many nets satisfy it and as many do not.
        cut: a range cut leaves out about this share of the nets (its cut point is an observed value, at most
            1 - cut of the nets out); the complementary cut at the same point is tested too.
        n_perm: the first batch of within-bin permutations of a p-value (doubled until STOP_HITS of them are at
            least as extreme, or until the threshold's permutations_needed are drawn); max_perm: a cap below what
            the threshold needs (None: none), where a p-value whose Monte Carlo interval holds the threshold is
            "undecided"; perm_seed: their seed.
        seed: the in-band draws' seed.
        min_in_band: a kept restriction leaves a space whose draws land in the band at least this often.
        in_band_draws: draws that measure it.
        bins: log-spaced FLOPs bins of the complexity normalization (default: nets / 10, within 1..10).
        max_steps: at most this many restrictions kept per refinement.
    """

    alpha: float = 0.05
    correction: str = "spending"
    min_removed: float = 0.05
    min_nets: int = 5
    cut: float = 1 / 3
    n_perm: int = 1000
    seed: int = 0
    min_in_band: float = 0.5
    in_band_draws: int = 200
    bins: Optional[int] = None
    max_steps: int = 10
    max_perm: Optional[int] = None
    perm_seed: int = 0

    def threshold(self, look: int, step: int, m: int) -> float:
        """The p-value each of the m candidates of step `step` of round `look` must reach."""
        if self.correction == "spending":
            return self.alpha / 2 ** look / 2 ** step / max(1, m)
        return self.alpha / max(1, m) if self.correction == "bonferroni" else self.alpha

    def run_error(self, rounds: int) -> Optional[float]:
        """The family-wise error rate (a false keep anywhere) that `rounds` rounds control; None: not controlled."""
        if self.correction == "spending":
            return self.alpha * (1 - 2.0 ** -rounds) * (1 - 2.0 ** -self.max_steps)
        return None

    def check(self) -> "RefineOptions":
        if not 0 < self.alpha < 1:
            raise RefineError(f"alpha: {self.alpha} must lie in (0, 1)")
        if self.correction not in CORRECTIONS:
            raise RefineError(f"correction: {self.correction!r} is not one of {', '.join(CORRECTIONS)}")
        if not 0 <= self.min_removed < 1 or not 0 < self.cut < 1 or not 0 <= self.min_in_band <= 1:
            raise RefineError("min_removed and min_in_band must lie in [0, 1), cut in (0, 1)")
        if self.max_perm is not None and self.max_perm < self.n_perm:
            raise RefineError(f"max_perm: {self.max_perm} must be >= n_perm {self.n_perm}")
        for key in ("min_nets", "n_perm", "in_band_draws", "max_steps"):
            if getattr(self, key) < 1:
                raise RefineError(f"{key}: {getattr(self, key)} must be >= 1")
        return self



def space_mapping(space: str | Path, corner: Optional[str] = None) -> tuple[dict[str, Any], Space]:
    """The mapping of a space file (a shipped name or a path) with the named corner laid over it and no corners
    left, and the Space it parses to (`nasx.space.edit.flat_mapping`); RefineError for a rule space."""
    data, parsed = flat_mapping(space, corner)
    if parsed.rule is not None:
        raise RefineError(f"space {parsed.name}: its stages are laid out by the RegNet rule; refine tests "
                          f"per-stage fields (depth, width, block fields, ties) and cannot restrict a rule's "
                          f"parameters yet")
    return data, parsed


@dataclass(frozen=True)
class _Net:
    spec: NetSpec
    error: float  # 1 - validation accuracy
    flops: float
    number: int  # the trial's number


@dataclass(frozen=True)
class Evaluation:
    """One candidate tested at one step of a refinement."""

    step: int
    restriction: Restriction
    nets: int  # the step's nets (members of the space so far)
    satisfy: int  # of them, members of the restricted space
    removed: float  # share of the step's nets it leaves out
    removed_structures: Optional[float]  # share of the structures it removes (Space.size; None: continuous, or widths)
    ks: float  # complexity-normalized KS of the nets that satisfy it against the rest, shared bins (NaN: not tested)
    ks_all: float  # ... against all the step's nets (as the papers plot restricted vs original)
    p_value: float  # one-sided within-bin permutation p-value of the adjusted shift's t (NaN: not tested)
    mean_diff: float  # weighted mean error of the subset minus the rest's, in points (negative: better)
    better: bool  # the subset's EDF lies above the rest's where they differ most (lower error)
    threshold: float  # the p-value it had to reach (alpha, or alpha / m)
    in_band: Optional[float]  # share of the restricted space's draws in the band (measured for contenders only)
    kept: bool
    verdict: str
    p_low: float = math.nan  # Clopper-Pearson interval (MC_LEVEL) of the exact permutation p-value
    p_high: float = math.nan
    permutations: int = 0  # drawn (Besag-Clifford: until STOP_HITS as extreme, or as many as the threshold needs)
    shift: float = math.nan  # error of the subset minus the rest's at the same FLOPs, in points (the tested effect)
    t: float = math.nan  # its t (error ~ FLOPs bin + log FLOPs within bins + member)
    borderline: bool = False  # p's Monte Carlo interval holds the threshold: another permutation seed may decide otherwise
    ess_subset: float = math.nan  # Kish effective sample size of each side's complexity weights
    ess_rest: float = math.nan
    left_out: int = 0  # nets in FLOPs bins populated by one side only (weight 0 in the test)
    shared_bins: int = 0
    subset_errors: tuple[float, ...] = field(default=(), repr=False)
    subset_flops: tuple[float, ...] = field(default=(), repr=False)
    rest_errors: tuple[float, ...] = field(default=(), repr=False)
    rest_flops: tuple[float, ...] = field(default=(), repr=False)

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)

    def row(self) -> dict[str, Any]:
        """A flat row for tables and CSV."""
        return {"step": self.step, "restriction": self.restriction.text, "kind": self.restriction.kind,
                "key": self.restriction.key, "nets": self.nets, "satisfy": self.satisfy, "removed": self.removed,
                "removed_structures": self.removed_structures, "ks": self.ks, "ks_all": self.ks_all,
                "p_value": self.p_value, "p_low": self.p_low, "p_high": self.p_high,
                "permutations": self.permutations, "threshold": self.threshold, "borderline": self.borderline,
                "shift_points": self.shift, "t": self.t,
                "ess_subset": self.ess_subset, "ess_rest": self.ess_rest, "left_out_one_sided_bins": self.left_out,
                "shared_bins": self.shared_bins, "mean_error_diff_points": self.mean_diff,
                "better": self.better, "in_band": self.in_band, "kept": self.kept, "verdict": self.verdict}

    def evidence(self) -> str:
        """One line of evidence for the refined file's header."""
        structures = "" if self.removed_structures is None else f", {self.removed_structures:.0%} of the structures"
        band = "" if self.in_band is None else f"; in band {self.in_band:.0%} of draws"
        return (f"error {self.shift:+.2f} points vs the rest at the same FLOPs (t {self.t:.2f}, one-sided p "
                f"{self.p_value:.5f} <= {self.threshold:.5f}, {MC_LEVEL:.1%} Monte Carlo interval {self.p_low:.5f}.."
                f"{self.p_high:.5f}{', borderline' if self.borderline else ''}, {self.permutations} within-bin "
                f"permutations), KS {self.ks:.3f}, mean error {self.mean_diff:+.2f} points; {self.satisfy} of "
                f"{self.nets} nets satisfy "
                f"it (removes {self.removed:.0%} of the nets{structures}; effective sizes {self.ess_subset:.1f} vs "
                f"{self.ess_rest:.1f}, {self.left_out} nets in one-sided FLOPs bins left out){band}")


@dataclass(frozen=True)
class _Measured:
    """What testing one candidate measured: the fields of `Evaluation` of the same names (NaN: not measured)."""

    nets: int  # the step's nets
    satisfy: int = 0
    removed: float = math.nan
    removed_structures: Optional[float] = None
    ks: float = math.nan
    ks_all: float = math.nan
    p_value: float = math.nan
    mean_diff: float = math.nan
    better: bool = False
    p_low: float = math.nan
    p_high: float = math.nan
    permutations: int = 0
    shift: float = math.nan
    t: float = math.nan
    borderline: bool = False
    ess_subset: float = math.nan
    ess_rest: float = math.nan
    left_out: int = 0
    shared_bins: int = 0
    subset_errors: tuple[float, ...] = ()
    subset_flops: tuple[float, ...] = ()
    rest_errors: tuple[float, ...] = ()
    rest_flops: tuple[float, ...] = ()

    def judged(self, res: AdjustedShift, ks: StratifiedKS) -> "_Measured":
        """With the adjusted shift test's outcome and the normalized EDFs' KS (shown, not tested)."""
        return dataclasses.replace(self, ks=ks.ks, p_value=res.p_value, p_low=res.p_low, p_high=res.p_high,
                                   permutations=res.permutations, shift=100 * res.shift, t=res.t,
                                   borderline=res.borderline, better=res.shift < 0, ess_subset=ks.ess_a,
                                   ess_rest=ks.ess_b, left_out=res.left_out_a + res.left_out_b, shared_bins=res.bins)

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class _Tested:
    """A candidate under test in one step: what it measured, its permutation test once run, and its verdict."""

    restriction: Restriction
    space: Optional[Space]
    subset: list[_Net]
    stats: _Measured
    verdict: str = ""
    test: Optional[AdjustedShift] = None


def _member(space: Space, net: NetSpec, cache: dict) -> bool:
    shape = input_of(net)
    if shape not in cache:
        cache[shape] = space.at(shape)
    return cache[shape].why_not(net) is None


def _structures(space: Space) -> float:
    n = space.size()
    return n if math.isfinite(n) else math.nan


def _test(r: Restriction, base: list[_Net], current: Space, before: float, opts: RefineOptions,
          edges: Sequence[float]) -> _Tested:
    """Split the step's nets by membership of the restricted space and measure the split (no permutation yet)."""
    stats = _Measured(nets=len(base))
    try:
        space = parse_space(r.data, current.source)
    except (SpaceError, TypeError, KeyError) as e:
        return _Tested(r, None, [], stats, f"invalid: {e}")
    cache: dict = {}
    inside = [_member(space, n.spec, cache) for n in base]
    subset = [n for n, i in zip(base, inside) if i]
    rest = [n for n, i in zip(base, inside) if not i]
    after = _structures(space)
    shrink = (1 - after / before if not is_width(r.key) and before > 0 and not math.isnan(before)
              and not math.isnan(after) else None)
    stats = dataclasses.replace(stats, satisfy=len(subset), removed=len(rest) / len(base), removed_structures=shrink)
    if len(subset) < opts.min_nets or len(rest) < opts.min_nets:
        few = (f"only {len(subset)} nets satisfy it" if len(subset) < opts.min_nets
               else f"it leaves out only {len(rest)} nets")
        return _Tested(r, space, subset, stats, f"not tested: {few} (each side needs {opts.min_nets})")
    stats = dataclasses.replace(stats, subset_errors=tuple(n.error for n in subset),
                                subset_flops=tuple(n.flops for n in subset), rest_errors=tuple(n.error for n in rest),
                                rest_flops=tuple(n.flops for n in rest))
    shift = subset_shift([n.error for n in base], [n.flops for n in base], inside, edges)
    if not shift.shared:
        return _Tested(r, space, subset, stats, "not tested: no FLOPs bin holds nets of both sides")
    return _Tested(r, space, subset, dataclasses.replace(stats, ks_all=shift.ks_all, mean_diff=shift.mean_diff))


def _judge(t: _Tested, threshold: float, opts: RefineOptions, edges: Sequence[float]) -> None:
    """The adjusted shift test of a tested candidate against its threshold (its stats filled in), and its KS."""
    s = t.stats
    t.test = adjusted_shift_test(s.subset_errors, s.rest_errors, s.subset_flops, s.rest_flops, edges,
                                 threshold=threshold, n_perm=opts.n_perm, max_perm=opts.max_perm, seed=opts.perm_seed)
    ks = ks_stratified_test(s.subset_errors, s.rest_errors, s.subset_flops, s.rest_flops, edges, n_perm=1)
    t.stats = s.judged(t.test, ks)


# ---------------------------------------------------------------------------------------------
# A refinement


@dataclass(frozen=True)
class Refinement:
    """What `refine` decided: every evaluation, the kept restrictions in order, and the refined space."""

    source: str
    data: Mapping[str, Any] = field(repr=False)  # the space as refined (flat mapping, corners laid over)
    refined: Mapping[str, Any] = field(repr=False)  # the refined space's mapping
    evaluations: tuple[Evaluation, ...]
    nets: int  # nets judged: complete, members of the space, one per spec
    excluded: Mapping[str, int]  # why the other records were left out
    errors: tuple[float, ...] = field(repr=False)  # of the nets judged (the space's EDF)
    flops: tuple[float, ...] = field(repr=False)
    band: Optional[tuple[int, int]] = None
    in_band: Optional[float] = None  # of the refined space
    options: RefineOptions = RefineOptions()
    look: int = 1  # the round of its run: with "spending", its tests spend alpha / 2^look

    @property
    def kept(self) -> list[Evaluation]:
        return [e for e in self.evaluations if e.kept]

    @property
    def steps(self) -> int:
        return max((e.step for e in self.evaluations), default=0)

    def final_step(self) -> list[Evaluation]:
        """The evaluations of the last step: every candidate tested among the nets that satisfy all kept ones."""
        return [e for e in self.evaluations if e.step == self.steps]

    def yaml(self, title: Optional[str] = None, judged: Optional[str] = None) -> str:
        """The refined space file: a header recording each kept restriction and its evidence, then the mapping.
        `judged` says where the nets came from (e.g. the rounds pooled), on a line of its own."""
        o = self.options
        test = {"spending": f"round {self.look} spends alpha / 2^{self.look}, step s half of that per step, "
                            f"split over its candidates (Bonferroni); the whole run's family-wise error rate < "
                            f"{o.alpha:g}",
                "bonferroni": "Bonferroni over each step's candidates", "none": "no correction"}[o.correction]
        lines = [f"# {title or 'refined by nasx refine'}",
                 f"# from {self.source}: {self.nets} trained nets (complete, one per spec; validation error, the "
                 f"test split never read)" + (f"; left out: {_counts(self.excluded)}" if self.excluded else "")]
        if judged:
            lines.append(f"# judged on {judged}")
        cap = "no cap" if o.max_perm is None else f"at most {o.max_perm}"
        lines.append(f"# test: error of the nets that satisfy a restriction vs the rest at the same FLOPs (OLS t of "
                     f"membership with FLOPs bins and a within-bin log-FLOPs slope), one-sided p-value from "
                     f"permutations within FLOPs bins ({o.n_perm} doubled until {STOP_HITS} are as extreme or as "
                     f"many as the threshold needs, {cap}; seed {o.perm_seed}), alpha {o.alpha:g} ({test}), greedy")
        if self.band:
            lines.append(f"# band: FLOPs {self.band[0]:,}..{self.band[1]:,}"
                         + ("" if self.in_band is None else f"; this space lands in it in {self.in_band:.0%} of draws"))
        kept = self.kept
        if kept:
            lines.append("# kept restrictions, in order:")
            for i, e in enumerate(kept, 1):
                lines.append(f"#   {i}. {e.restriction.text}")
                lines.append(f"#      {e.evidence()}")
        else:
            lines.append(f"# no restriction kept ({len([e for e in self.evaluations if e.tested])} tested): the "
                         f"space is unchanged")
        return "\n".join(lines) + "\n" + dump(self.refined)

    def write(self, path: str | Path, title: Optional[str] = None, judged: Optional[str] = None) -> Path:
        """Write the refined space file (see `yaml`); check that it loads back as the same space."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.yaml(title, judged)
        path.write_text(text)
        load_space(path)  # a valid space file: SpaceError otherwise
        if parse_yaml(text) != dict(self.refined):
            raise RefineError(f"{path}: the written space does not load back as the refined space")
        return path


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in counts.items())


def _nets(records: Sequence[TrialRecord], space: Space) -> tuple[list[_Net], dict[str, int], Optional[str]]:
    nets: list[_Net] = []
    excluded: dict[str, int] = {}
    seen: set[str] = set()
    first_reason = None
    cache: dict = {}

    def leave(why: str) -> None:
        excluded[why] = excluded.get(why, 0) + 1

    for r in records:
        if r.state != COMPLETE or r.outcome.val_acc is None or r.spec is None:
            leave("not complete")
            continue
        net = r.net
        if net.id in seen:
            leave("duplicate nets")
            continue
        shape = input_of(net)
        if shape not in cache:
            cache[shape] = space.at(shape)
        why = cache[shape].why_not(net)
        if why is not None:
            first_reason = first_reason or f"trial {r.number}: {why}"
            leave("not members of the space")
            continue
        seen.add(net.id)
        nets.append(_Net(net, 1.0 - float(r.outcome.val_acc), float(r.flops or 0) or _flops(net), r.number))
    return nets, excluded, first_reason


def _flops(net: NetSpec) -> float:
    from ..net.complexity import complexity

    return float(complexity(net).flops)


def refine(records: Sequence[TrialRecord], space_data: Mapping[str, Any], *, source: str = "space",
           band: Optional[tuple[int, int]] = None, name: Optional[str] = None,
           options: Optional[RefineOptions] = None, look: int = 1) -> Refinement:
    """Test the restrictions of a space on its trained nets and keep the ones that lower the error (see the module
    docstring). Pure: records and the space's mapping in, decisions and the refined mapping out.

    Args:
        records: the trials of a study of the space; only complete ones with a validation accuracy count
            (their test accuracy is never read).
        space_data: the space file's mapping (a corner already laid over it: `space_mapping`); corners are dropped.
        source: how messages and the file header name the space.
        band: the FLOPs band the nets were sampled in (default: the space's); a kept restriction must leave a
            space that lands in it in at least `options.min_in_band` of its draws. The refined file records it,
            and the nets' input where it differs from the file's (the band holds at that input).
        name: the refined space's `name` (default: the input's).
        options: see RefineOptions.
        look: the round of the run this refinement is (1 alone): with "spending" it may spend alpha / 2^look.
    """
    opts = (options or RefineOptions()).check()
    data = flat(space_data)
    space = parse_space(data, source)
    nets, excluded, why = _nets(records, space)
    if len(nets) < MIN_NETS:
        detail = f" (first: {why})" if why else ""
        raise RefineError(f"{source}: {len(nets)} usable nets ({_counts(excluded) or 'none left out'}){detail}; a "
                          f"refinement needs at least {MIN_NETS} complete nets of the space")
    band = default_band(space, band)
    data, shape = _as_sampled(data, space, band, nets)
    current_data, current, base = data, parse_space(data, source), nets
    evaluations: list[Evaluation] = []
    for step in range(1, opts.max_steps + 1):
        done, chosen = _step(step, current_data, current, base, band, shape, opts, look)
        evaluations.extend(done)
        if chosen is None:
            break
        current_data, current, base = dict(chosen.restriction.data), chosen.space, chosen.subset
    refined = dict(current_data)
    if name is not None:
        refined = {"name": name, **{k: v for k, v in refined.items() if k != "name"}}
        current = parse_space(refined, source)
    final_in_band = in_band_share(current.at(shape), band, opts.in_band_draws, opts.seed) if band else None
    return Refinement(source=source, data=data, refined=refined, evaluations=tuple(evaluations), nets=len(nets),
                      excluded=excluded, errors=tuple(n.error for n in nets), flops=tuple(n.flops for n in nets),
                      band=band, in_band=final_in_band, options=opts, look=look)


def _as_sampled(data: dict[str, Any], space: Space, band: Optional[tuple[int, int]],
                nets: Sequence[_Net]) -> tuple[dict[str, Any], InputShape]:
    """The space's mapping with the band the nets were sampled in and their input (where either differs from the
    file's: the band holds at that input), and that input."""
    if band is not None and space.flops != band:
        data = with_value(data, ("constraints", "flops"), [exact(band[0]), exact(band[1])])
    shape = input_of(nets[0].spec)
    if shape != space.input and len({input_of(n.spec) for n in nets}) == 1:
        data = with_value(data, ("input",), {"resolution": shape.resolution, "channels": shape.in_channels,
                                             "classes": shape.num_classes})
    return data, shape


def _step(step: int, data: Mapping[str, Any], current: Space, base: list[_Net], band: Optional[tuple[int, int]],
          shape: InputShape, opts: RefineOptions, look: int) -> tuple[list[Evaluation], Optional[_Tested]]:
    """One greedy step: every candidate tested on the step's nets, the strongest that qualifies kept (or none)."""
    bins = opts.bins or max(1, min(10, len(base) // 10))
    edges = log_bins([n.flops for n in base], bins)
    size = _structures(current)
    tested = [_test(r, base, current, size, opts, edges)
              for r in candidates(data, current, [n.spec for n in base], opts.cut)]
    threshold = opts.threshold(look, step, sum(1 for t in tested if not t.verdict))
    contenders = []
    for t in tested:
        if t.verdict:
            continue
        _judge(t, threshold, opts, edges)
        t.verdict = _verdict(t, threshold, opts)
        if not t.verdict:
            contenders.append(t)
    # the strongest first, by a statistic free of Monte Carlo error: the most negative t
    contenders.sort(key=lambda t: (t.test.t, t.restriction.text))
    chosen, in_band = _choose(contenders, step, band, shape, opts)
    return [Evaluation(step=step, restriction=t.restriction, threshold=threshold, in_band=in_band.get(id(t)),
                       kept=t is chosen, verdict=t.verdict, **t.stats.fields()) for t in tested], chosen


def _verdict(t: _Tested, threshold: float, opts: RefineOptions) -> str:
    """Why a tested candidate cannot be kept ("" when it is a contender)."""
    s, res = t.stats, t.test
    mc = (f"{MC_LEVEL:.1%} Monte Carlo interval {s.p_low:.5f}..{s.p_high:.5f}, {s.permutations} permutations"
          + ("; borderline: the interval holds the threshold, another permutation seed may decide otherwise"
             if s.borderline else ""))
    if math.isnan(s.t):
        return "not tested: membership is collinear with the FLOPs bins and log FLOPs"
    if not s.better:
        return f"not better: error {s.shift:+.2f} points vs the rest at the same FLOPs (t {s.t:.2f})"
    if res.decision == "not significant":
        return f"not significant: p {s.p_value:.5f} > {threshold:.5f} ({mc})"
    if res.decision == "undecided":
        return (f"undecided, not kept: p {s.p_value:.5f} ({mc}) holds the threshold {threshold:.5f} when "
                f"--max-permutations ran out")
    if s.removed < opts.min_removed:
        return f"removes too little: {s.removed:.0%} of the nets < {opts.min_removed:.0%}"
    return ""


def _choose(contenders: Sequence[_Tested], step: int, band: Optional[tuple[int, int]], shape: InputShape,
            opts: RefineOptions) -> tuple[Optional[_Tested], dict[int, float]]:
    """The first contender whose space still lands in the band often enough (its verdict "kept"), and the in-band
    shares measured on the way (by id of the candidate)."""
    chosen = None
    in_band: dict[int, float] = {}
    for t in contenders:
        if chosen is not None:
            t.verdict = f"significant, but {chosen.restriction.text} was kept first: tested again in step {step + 1}"
            continue
        if band is not None:
            share = in_band_share(t.space.at(shape), band, opts.in_band_draws, opts.seed)
            in_band[id(t)] = share
            if share < opts.min_in_band:
                t.verdict = f"its space lands in the band in {share:.0%} of draws < {opts.min_in_band:.0%}"
                continue
        chosen = t
        t.verdict = "kept"
    return chosen, in_band


# ---------------------------------------------------------------------------------------------
# Rounds: sample, train, refine, repeat


def round_study(name: str, k: int) -> str:
    """The fixed study of round k of the refinement `name`."""
    return f"refine-{name}-r{k}"


@dataclass
class Round:
    """One round: the study of the space's sample, its refinement, and the refined space file it wrote."""

    index: int
    study: str
    space: str  # the space the study names (a shipped space or a file)
    corner: Optional[str]
    records: list[TrialRecord] = field(repr=False)
    refinement: Refinement
    file: Path  # the refined space: the next round's space
    trained: bool  # whether this run trained the round (False: an existing study was refined)
    # (round, study, its usable nets) of every round whose nets the refinement judged: the rounds that sampled this
    # same space, in order, this one last (one entry: its own nets only)
    judged: tuple[tuple[int, str, int], ...] = ()
    errors: tuple[float, ...] = field(default=(), repr=False)  # its own usable nets' (its sample's EDF)
    flops: tuple[float, ...] = field(default=(), repr=False)

    @property
    def pooled(self) -> bool:
        """Whether its refinement judged the nets of earlier rounds of the same space too."""
        return len(self.judged) > 1

    def judged_text(self) -> str:
        """Which nets its refinement judged, after "judged on": "rounds 1-2 pooled: 96 nets of the same space (48 of
        refine-x-r1, 48 of refine-x-r2)" or "round 2's own 48 nets"."""
        nets = self.refinement.nets
        if not self.pooled:
            return f"round {self.index}'s own {nets} nets"
        parts = ", ".join(f"{count} of {study}" for _, study, count in self.judged)
        return f"rounds {_span([j for j, _, _ in self.judged])} pooled: {nets} nets of the same space ({parts})"


@dataclass
class RefineRun:
    """What `run_refine` did: its rounds (in order), where the files went, and whether it was interrupted."""

    name: str
    out: Path
    storage: str
    rounds: list[Round]
    band: Optional[tuple[int, int]]
    samples: int
    options: RefineOptions
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def refined(self) -> Optional[Path]:
        return self.out / "refined.yaml" if self.rounds else None


def _span(rounds: Sequence[int]) -> str:
    """1, 2, 3 -> "1-3"; 1, 3 -> "1, 3"."""
    rounds = sorted(rounds)
    if len(rounds) > 1 and rounds == list(range(rounds[0], rounds[-1] + 1)):
        return f"{rounds[0]}-{rounds[-1]}"
    return ", ".join(map(str, rounds))


def _space_key(data: Mapping[str, Any]) -> str:
    """What makes two space mappings the same space: their content, less the name and the prose."""
    return mapping_hash({k: v for k, v in data.items() if k not in ("name", "description")})


def _seed(seed: int, k: int) -> np.random.Generator:
    """Round 1 draws with the seed itself (what `nasx edf` and a hand-made round 1 use); round k with (seed, k)."""
    return np.random.default_rng(seed if k == 1 else [seed, k])


def _decisions(r: Refinement) -> tuple:
    """What a refinement decided, candidate by candidate: kept or not, and the kind of verdict."""
    return tuple((e.step, e.restriction.text, e.kept, e.verdict.split(":")[0]) for e in r.evaluations)


def _seed_check(refinement: Refinement, records: Sequence[TrialRecord], data: Mapping[str, Any], label: str,
                band: Optional[tuple[int, int]], name: str, opts: RefineOptions, k: int, seeds: int) -> str:
    """Redo a round's refinement under permutation seeds 0..seeds-1: a line saying whether its decisions hold."""
    base = _decisions(refinement)
    differ = [s for s in range(seeds) if s != opts.perm_seed and _decisions(
        refine(records, data, source=label, band=band, name=name, options=dataclasses.replace(opts, perm_seed=s),
               look=k)) != base]
    if not differ:
        return (f"round {k}: the same decisions (every candidate's verdict, {len(refinement.kept)} kept) under "
                f"permutation seeds 0-{seeds - 1}")
    return (f"round {k}: decisions differ under permutation seed(s) {', '.join(map(str, differ))} of 0-{seeds - 1} "
            f"(a p-value near its threshold: the page marks such decisions borderline)")


def _existing_keys(storage: str, study: str) -> set[str]:
    try:
        records = open_study(study, storage).records
    except StudyError:
        return set()
    return {r.candidate_key for r in records if r.candidate_key is not None}


# long (~67 lines, 26 of them the docstring of its arguments): the body is the rounds' loop over named steps
def run_refine(space: Optional[str] = None, *, name: Optional[str] = None, config: Optional["StudyConfig"] = None,
               corner: Optional[str] = None, samples: Optional[int] = None, rounds: int = 1,
               study: Optional[str] = None, out: Optional[str | Path] = None, options: Optional[RefineOptions] = None,
               progress: Optional[Callable] = None, on_note: Optional[Callable[[str], None]] = None,
               train_fn: Optional[Callable] = None, check_seeds: int = 0) -> RefineRun:
    """Rounds of sample -> train -> refine (the papers' loop, automated), each a fixed, resumable study.

    Round 1 is the study `study` when given (refined as it is, never trained), else `refine-<name>-r1`: `samples`
    nets drawn i.i.d. from `space` (its `corner` laid over it) in the config's FLOPs band with
    numpy.random.default_rng(seed), each trained once (seed `config.seed`) on the config's proxy, validation
    split only. Round k > 1 samples the refined space of round k - 1 (`<out>/round-<k>.yaml`, a standalone space
    file the study names) in the same band with default_rng([seed, k]), as `refine-<name>-r<k>`. A round whose
    refinement keeps no restriction leaves the space as it was: the next round samples that same space again (its
    own seed, its own study) and its refinement judges the nets of every round of that space pooled (48 -> 96 ->
    ... nets: the power that a Bonferroni-corrected step lacks on one sample); a round after a kept restriction
    judges its own nets only. Round 1 is the same either way. Every round writes `<out>/round-<k+1>.yaml`; the last
    also `<out>/refined.yaml`. A re-run trains only what is missing (a larger `rounds` trains only the new rounds);
    an interrupted round returns with `interrupted` set.

    Args:
        space: a shipped space or a space file (with `study`: default, the space the study was made with).
        name: names the studies and files (default: the space's name and corner, or the study's name).
        config: the proxy and where it runs (dataset, epochs, fraction, val_size, batch_size, flops band, seed,
            storage, workers, device); its space, corner, study and test settings are replaced. With `study`,
            rounds > 1 default to the study's own proxy.
        samples: nets per round (default 48; with `study`, its number of complete nets).
        out: folder of the space files (default reports/refine-<name>/).
        progress, on_note: hooks for study snapshots and one-line notes; train_fn: a stand-in trainer (tests).
        check_seeds: with N > 1, each round's refinement is redone (nothing trained) under permutation seeds
            0..N-1, and a note says whether every decision is the same.
    """
    opts = (options or RefineOptions()).check()
    if rounds < 1:
        raise RefineError(f"--rounds {rounds}: must be >= 1")
    if samples is not None and samples < MIN_NETS:
        raise RefineError(f"--samples {samples}: a round needs at least {MIN_NETS} nets")
    plan = _plan(space, name, config, corner, samples, study, out, opts, check_seeds)
    run = RefineRun(name=plan.name, out=plan.out, storage=plan.cfg.storage, rounds=[], band=plan.cfg.flops,
                    samples=plan.n, options=opts)
    hooks = _Hooks(on_note or (lambda _: None), progress, on_note, train_fn)
    src = plan.first_space
    for k in range(1, rounds + 1):
        # the earlier rounds that sampled this same space (it kept no restriction): their nets are judged with ours
        same = [r for r in run.rounds if _space_key(r.refinement.data) == _space_key(src.data)]
        if k == 1 and plan.first is not None:
            records, study_name, trained = plan.first, plan.study, False
        else:
            study_name, trained = round_study(plan.name, k), True
            records = _train_round(plan, k, src, same, hooks)
            if records is None:
                run.interrupted = True
                return run
        this = _refine_round(plan, run, k, src, records, study_name, trained, same, hooks.note)
        run.rounds.append(this)
        src = _Sampled(str(this.file), None, dict(this.refinement.refined))
        if not this.refinement.kept:
            following = [r.index for r in same] + [k, k + 1]
            run.notes.append(f"round {k} kept no restriction: the space did not change, so " + (
                f"round {k + 1} samples it again and judges rounds {_span(following)} pooled" if k < rounds else
                f"another round (--rounds {k + 1}, the same command otherwise) would sample it again and judge "
                f"rounds {_span(following)} pooled"))
            hooks.note(run.notes[-1])
    last = run.rounds[-1]
    run.refined.parent.mkdir(parents=True, exist_ok=True)
    last.refinement.write(run.refined, title=f"nasx refine {plan.name}: the refined space after {len(run.rounds)} "
                                             f"round(s) (last study {last.study})", judged=last.judged_text())
    return run


@dataclass(frozen=True)
class _Hooks:
    """run_refine's hooks: its one-line notes (never None), and what it hands to run_study."""

    note: Callable[[str], None]
    progress: Optional[Callable]
    on_note: Optional[Callable[[str], None]]
    train_fn: Optional[Callable]


@dataclass(frozen=True)
class _Sampled:
    """The space a round samples: as its study names it (a shipped space or a file, and a corner), its mapping."""

    space: str
    corner: Optional[str]
    data: Mapping[str, Any] = field(repr=False)  # flat, the corner laid over it

    @property
    def label(self) -> str:
        return self.space + (f" (corner {self.corner})" if self.corner else "")


@dataclass
class _Plan:
    """What every round of a run shares: the first space, its name, band and proxy, where studies and files go."""

    name: str
    first_space: _Sampled
    cfg: "StudyConfig"  # the proxy, the band, the storage (space, corner and study set per round)
    out: Path
    n: int  # nets per round
    options: RefineOptions
    check_seeds: int
    study: Optional[str] = None  # an existing study refined as round 1
    first: Optional[list[TrialRecord]] = field(default=None, repr=False)  # its records

    @cached_property
    def shape(self) -> InputShape:
        """The dataset's input (read once, when a round is first trained; nothing decoded)."""
        from .. import data as nasx_data

        return nasx_data.input_shape(self.cfg.dataset, data_dir=self.cfg.data_dir, download=self.cfg.download)


def _plan(space: Optional[str], name: Optional[str], config: Optional["StudyConfig"], corner: Optional[str],
          samples: Optional[int], study: Optional[str], out: Optional[str | Path], options: RefineOptions,
          check_seeds: int) -> _Plan:
    """The run's plan from its arguments (and the stored study refined as round 1, when given)."""
    from ..study import StudyConfig

    cfg = config or StudyConfig()
    stored = None
    if study is not None:
        stored, cfg, space, corner = _from_study(study, cfg, space, corner)
        name = name or study
    if space is None:
        raise RefineError("give a space (--space) or an existing study (--study)")
    corner = None if corner == "none" else corner
    data, parsed = space_mapping(space, corner)
    info = stored.info if stored is not None else None
    if info is not None and info.space_hash is not None and info.space_hash != parsed.content_hash:
        raise RefineError(f"study {study!r} was made from another version of {space!r}"
                          f"{f' (corner {corner})' if corner else ''}; restore the file or give the one it used")
    name = name or (Path(space).stem + (f"-{corner}" if corner else ""))
    band = default_band(parsed, cfg.flops)
    if band is None:
        raise RefineError(f"{space}: the space has no FLOPs band; give one (--flops LO:HI)")
    first = list(stored.records) if stored is not None else None
    n = samples or (sum(1 for r in first if r.state == COMPLETE) if first else 48)
    cfg = dataclasses.replace(cfg, storage=cfg.shelf.url(f"refine-{name}"),
                              flops=band, test=False, sampler="random", corner=None)
    return _Plan(name=name, first_space=_Sampled(str(space), corner, data), cfg=cfg, n=n, options=options,
                 check_seeds=check_seeds, study=study, first=first,
                 out=Path(out) if out is not None else Path("reports") / f"refine-{name}")


def _from_study(study: str, cfg: "StudyConfig", space: Optional[str],
                corner: Optional[str]) -> tuple[StoredStudy, "StudyConfig", Optional[str], Optional[str]]:
    """A stored study refined as round 1: it, the config with its band, storage and (for later rounds) its proxy,
    and its space and corner where none is given."""
    storage = cfg.shelf.url(study)
    stored = open_study(study, storage)
    info = stored.info
    cfg = dataclasses.replace(cfg, flops=cfg.flops or stored.band)
    if space is None:
        if info is None:
            raise RefineError(f"study {study!r} was not made by nasx: give its space with --space")
        space, corner = info.space, corner or info.corner
    cfg = dataclasses.replace(cfg, storage=storage)
    if info is not None:  # later rounds train on the study's own proxy
        cfg = dataclasses.replace(cfg, dataset=info.dataset, val_size=info.val_size,
                                  seed=info.seed).with_budget(info.budget or Budget(None, None))
    return stored, cfg, space, corner


def _train_round(plan: _Plan, k: int, src: _Sampled, same: Sequence[Round],
                 hooks: _Hooks) -> Optional[list[TrialRecord]]:
    """Sample round k's space in the band and train it as the fixed study `refine-<name>-r<k>` (resumed where it
    exists): its records, or None when it was interrupted."""
    from ..study.config import redact, study_space
    from ..study.fixed import draw, run_fixed

    cfg, n, band, storage = plan.cfg, plan.n, plan.cfg.flops, plan.cfg.storage
    study_name = round_study(plan.name, k)
    round_cfg = dataclasses.replace(cfg, space=src.space, corner=src.corner, study=study_name)
    drawn = draw(study_space(round_cfg).at(plan.shape), n, _seed(cfg.seed, k), flops=band)
    foreign = _existing_keys(storage, study_name) - {f"{spec.id}:{cfg.seed}" for spec in drawn}
    if foreign:
        raise RefineError(f"study {study_name!r} in {redact(str(storage))} holds {len(foreign)} net(s) not drawn from "
                          f"{src.label} (another refinement?); use another --name or --storage")
    again = f" (the space of round {_span([r.index for r in same])} again)" if same else ""
    pool = f"; its refinement judges rounds {_span([r.index for r in same] + [k])} pooled" if same else ""
    hooks.note(f"round {k}: {n} nets of {src.label}{again} in FLOPs {band[0]:,}..{band[1]:,} -> study "
               f"{study_name}{pool}")
    summary = run_fixed(round_cfg, drawn, tags={"round": k}, progress=hooks.progress, on_note=hooks.on_note,
                        train_fn=hooks.train_fn)
    snap = summary.snapshot
    hooks.note(f"round {k}: {snap.complete} complete, {snap.failed} failed in {summary.wall_time:.0f} s")
    return None if summary.interrupted else list(open_study(study_name, storage).records)


def _refine_round(plan: _Plan, run: RefineRun, k: int, src: _Sampled, records: list[TrialRecord], study_name: str,
                  trained: bool, same: Sequence[Round], note: Callable[[str], None]) -> Round:
    """Refine round k on its nets (pooled with the earlier rounds of the same space) and write the next round's
    space file `<out>/round-<k+1>.yaml`."""
    name, band, opts, label = plan.name, plan.cfg.flops, plan.options, src.label
    # earlier rounds first: a net drawn again in a later round is judged once
    pooled = [rec for r in same for rec in r.records] + list(records)
    studies = ", ".join([r.study for r in same] + [study_name])
    try:
        refinement = refine(pooled, src.data, source=label, band=band, name=f"{name}-r{k + 1}", options=opts, look=k)
    except RefineError as e:
        raise RefineError(f"round {k} ({'studies' if same else 'study'} {studies}): {e}") from None
    if plan.check_seeds > 1:
        run.notes.append(_seed_check(refinement, pooled, src.data, label, band, f"{name}-r{k + 1}", opts, k,
                                     plan.check_seeds))
        note(run.notes[-1])
    own, _, _ = _nets(records, parse_space(refinement.data, label))
    this = Round(index=k, study=study_name, space=src.space, corner=src.corner, records=records,
                 refinement=refinement, file=plan.out / f"round-{k + 1}.yaml", trained=trained,
                 judged=tuple((r.index, r.study, len(r.errors)) for r in same) + ((k, study_name, len(own)),),
                 errors=tuple(x.error for x in own), flops=tuple(x.flops for x in own))
    origin = (f"rounds {_span([r.index for r in same] + [k])} pooled (studies {studies})" if same
              else f"round {k} (study {study_name})")
    refinement.write(this.file, title=f"nasx refine {name}: the space of round {k + 1}, refined from {origin}",
                     judged=this.judged_text())
    kept = refinement.kept
    note(f"round {k}: judged on {this.judged_text()}; {len(kept)} restriction(s) kept of "
         f"{sum(1 for e in refinement.evaluations if e.tested)} tests"
         + "".join(f"; {e.restriction.text} (KS {e.ks:.2f}, p {e.p_value:.4f})" for e in kept)
         + f" -> {this.file}")
    return this
