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
    test         error = 1 - validation accuracy (the test split is never read); the complexity-normalized EDF
                 (over the FLOPs bins both sides populate, each side weighted so that every such bin weighs the
                 same; nets in one-sided bins left out) of the nets that satisfy it against the nets that do not;
                 KS statistic and its p-value from permutations within FLOPs bins, added until the p-value's Monte
                 Carlo interval clears the threshold (`nasx.stats.ks_stratified_test`)
    decision     greedy forward selection: in each step every candidate is tested on the nets of the current
                 space; the strongest one that is better (lower error), significant at alpha / 2^k / 2^s / m (round
                 k, step s, m candidates tested in it: the whole run's family-wise error rate stays below alpha),
                 removes at least `min_removed` of the nets and leaves a space that still samples at least
                 `min_in_band` of its draws in the band is kept; then the next step tests the rest among the nets
                 that satisfy it, until none is kept

`refine(records, space_data)` is that, pure (records in, decisions and the refined YAML out); `run_refine`
runs rounds of it as fixed, resumable studies (`refine-<name>-r<k>`): sample the space, train, refine, write the
refined space file, sample that in the same band, and so on; a round that keeps nothing is followed by another
sample of the same space, judged together with the earlier ones (pooled). Its page is drawn by
`nasx.report.refine`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..stats import MC_LEVEL, bin_index, complexity_weights, ks_statistic, ks_stratified_test, log_bins, \
    stratified_weights
from ..errors import NasxError
from ..net.fit import InputShape, input_of
from ..net.spec import InceptionBlock, NetSpec, parse_yaml
from ..study.record import StudyInfo, TrialRecord
from ..space import (BLOCK_FIELDS, INCEPTION_WIDTHS, Dist, Space, SpaceError, mapping_hash, overlay, drawn_width,
                    load_space, parse_space)
from ..space_sample import draft, resolve_band, sample, solve

if TYPE_CHECKING:
    from ..study import StudyConfig

__all__ = ["RefineError", "RefineOptions", "Restriction", "Evaluation", "Refinement", "Round", "RefineRun",
           "StoredStudy", "MIN_NETS", "CORRECTIONS", "refine", "candidates", "space_mapping", "in_band_share",
           "load_records", "run_refine", "round_study"]

MIN_NETS = 8  # complete nets a refinement needs at all
CORRECTIONS = ("spending", "bonferroni", "none")


class RefineError(NasxError, ValueError):
    """A refinement that cannot be done (unknown study, too few complete nets, another plan); one line."""


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
        n_perm: the first batch of permutations of a KS p-value (doubled until its Monte Carlo interval clears
            the threshold); max_perm: the cap, where the decision is "undecided"; perm_seed: their seed.
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
    max_perm: int = 64_000
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
        if self.max_perm < self.n_perm:
            raise RefineError(f"max_perm: {self.max_perm} must be >= n_perm {self.n_perm}")
        for key in ("min_nets", "n_perm", "in_band_draws", "max_steps"):
            if getattr(self, key) < 1:
                raise RefineError(f"{key}: {getattr(self, key)} must be >= 1")
        return self


# ---------------------------------------------------------------------------------------------
# Restrictions: edits of the space file's mapping


@dataclass(frozen=True)
class Restriction:
    """One candidate: an edit of the space's mapping, described in the file's own words."""

    kind: str  # "tie" | "cut" | "drop"
    key: str  # the edited key, e.g. "ties.width", "stages.depth", "stages.aggregated.bottleneck_ratio"
    text: str  # e.g. "ties.width: non_decreasing", "stages.depth: 1..3 -> 2..3", "stages.branch: drop residual"
    data: Mapping[str, Any] = field(repr=False, compare=False)  # the whole edited mapping


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
    p_value: float  # permutation p-value of ks (NaN: not tested)
    mean_diff: float  # weighted mean error of the subset minus the rest's, in points (negative: better)
    better: bool  # the subset's EDF lies above the rest's where they differ most (lower error)
    threshold: float  # the p-value it had to reach (alpha, or alpha / m)
    in_band: Optional[float]  # share of the restricted space's draws in the band (measured for contenders only)
    kept: bool
    verdict: str
    p_low: float = math.nan  # Clopper-Pearson interval (MC_LEVEL) of the exact permutation p-value
    p_high: float = math.nan
    permutations: int = 0  # drawn until the interval cleared the threshold (or the cap)
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
                "permutations": self.permutations, "threshold": self.threshold,
                "ess_subset": self.ess_subset, "ess_rest": self.ess_rest, "left_out_one_sided_bins": self.left_out,
                "shared_bins": self.shared_bins, "mean_error_diff_points": self.mean_diff,
                "better": self.better, "in_band": self.in_band, "kept": self.kept, "verdict": self.verdict}

    def evidence(self) -> str:
        """One line of evidence for the refined file's header."""
        structures = "" if self.removed_structures is None else f", {self.removed_structures:.0%} of the structures"
        band = "" if self.in_band is None else f"; in band {self.in_band:.0%} of draws"
        return (f"KS {self.ks:.3f} vs the rest (p {self.p_value:.4f}, {MC_LEVEL:.1%} Monte Carlo interval "
                f"{self.p_low:.4f}..{self.p_high:.4f} <= {self.threshold:.4f}, {self.permutations} within-bin "
                f"permutations), mean error {self.mean_diff:+.2f} points; {self.satisfy} of {self.nets} nets satisfy "
                f"it (removes {self.removed:.0%} of the nets{structures}; effective sizes {self.ess_subset:.1f} vs "
                f"{self.ess_rest:.1f}, {self.left_out} nets in one-sided FLOPs bins left out){band}")


def _dump(data: Mapping[str, Any]) -> str:
    """YAML as the shipped spaces are written: a mapping of plain values (a distribution, ties) on one line."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def mapping(dumper: yaml.SafeDumper, value: dict) -> Any:
        flat = all(not isinstance(v, dict) and not (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v))
                   for v in value.values())
        return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flat)

    Dumper.add_representer(dict, mapping)
    return yaml.dump(dict(data), Dumper=Dumper, sort_keys=False, default_flow_style=None, width=110)


def _flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a space mapping without its corners (a refined space is one flat space)."""
    if not isinstance(data, Mapping):
        raise RefineError(f"a space mapping is needed, got {type(data).__name__}")
    return {k: copy.deepcopy(v) for k, v in data.items() if k != "corners"}


def space_mapping(space: str | Path, corner: Optional[str] = None) -> tuple[dict[str, Any], Space]:
    """The mapping of a space file (a shipped name or a path) with the named corner laid over it and no corners
    left, and the Space it parses to (its content hash is the corner's, as a study of that corner stores it)."""
    loaded = load_space(space)
    data = _flat(loaded.data)
    if corner not in (None, "none"):
        loaded.corner(corner)  # an unknown corner: SpaceError naming the file and its corners
        data = overlay(data, copy.deepcopy(loaded.corners[corner]))  # the corner overlay is space.py's
    parsed = parse_space(data, loaded.source if corner in (None, "none") else f"{loaded.source} (corner {corner})")
    if parsed.rule is not None:
        raise RefineError(f"space {parsed.name}: its stages are laid out by the RegNet rule; refine tests "
                          f"per-stage fields (depth, width, block fields, ties) and cannot restrict a rule's "
                          f"parameters yet")
    return data, parsed


def _edit(data: Mapping[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(data))
    node = out
    for key in path[:-1]:
        if node.get(key) is None:
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise RefineError(f"{'.'.join(path)}: not a mapping in the space file")
    node[path[-1]] = value
    return out


def _node(dist: Dist, values: Sequence[Any]) -> Any:
    """The YAML node of `dist`'s kind over `values` (a range's bounds or the choices); one value: bare."""
    if len(set(map(repr, values))) == 1:
        return values[0]
    if dist.kind == "choice":
        return {"choice": list(values)}
    return {dist.kind: list(values)}


def _describe(node: Any) -> str:
    if isinstance(node, dict) and len(node) == 1:
        kind, arg = next(iter(node.items()))
        if kind == "choice":
            return "{" + ", ".join(map(str, arg)) + "}"
        return f"{arg[0]}..{arg[1]}" + ("" if kind in ("int", "float") else f" ({kind})")
    return repr(node)


def _stage_values(net: NetSpec, path: tuple[str, ...]) -> list[Any]:
    """The values a net holds for a space key (one per stage for per-stage keys); [] where the key does not
    apply to it. Only used to place range cuts; whether a net satisfies a restriction is membership."""
    stages = net.stages
    if path == ("stages", "count"):
        return [len(stages)]
    if path == ("stages", "depth"):
        return [s.depth for s in stages]
    if path == ("stages", "width"):
        return [s.width for s in stages if drawn_width(s)]
    if path[0] == "stem":
        if net.stem.kind == "none" or (path[1] == "mid_width" and net.stem.kind != "googlenet"):
            return []
        return [getattr(net.stem, path[1])]
    if path[0] == "head":
        return [getattr(net.head, path[1])]
    branch, name = path[1], path[2]
    out = []
    for s in stages:
        block = s.block
        if block.branch != branch:
            continue
        if branch == "aggregated" and name == "bottleneck_ratio":
            out.append(block.w_b / s.width)
        elif branch == "residual" and name == "bottleneck_ratio" and block.kind == "basic":
            continue
        elif isinstance(block, InceptionBlock) and ((name == "n" and block.factorize != "asymmetric")
                                                    or (name == "scale" and not block.residual)):
            continue
        else:
            out.append(getattr(block, name))
    return out


def _locations(data: Mapping[str, Any], space: Space) -> list[tuple[tuple[str, ...], Dist]]:
    """Every distribution written in the file (defaults are fixed values: nothing to restrict)."""
    out: list[tuple[tuple[str, ...], Dist]] = []
    stem = data.get("stem") or {}
    kinds = set(space.stem["kind"].values)
    for key in ("kind", "width", "mid_width"):
        if key in stem and not (key == "width" and (space.tied("stem_width") == "stage1" or kinds == {"none"})) \
                and not (key == "mid_width" and "googlenet" not in kinds):
            out.append((("stem", key), space.stem[key]))
    for key in (data.get("head") or {}):
        out.append((("head", key), space.head[key]))
    stages = data.get("stages") or {}
    for key in ("count", "depth", "width", "branch", "stride", "pool"):
        if key in stages and isinstance(space.stages[key], Dist):
            out.append((("stages", key), space.stages[key]))
    for branch in space.branches():
        section = stages.get(branch) or {}
        for name in BLOCK_FIELDS[branch]:
            if name in section and isinstance(space.blocks[branch].get(name), Dist):
                out.append((("stages", branch, name), space.blocks[branch][name]))
    return [(p, d) for p, d in out if d.kind != "fixed" and d.size() > 1]


def _cut_point(values: Sequence[Optional[float]], legal: Callable[[float], bool], share: float,
               lower: bool) -> Optional[tuple[Any, float]]:
    """Over the distinct observed values: the v whose cut (per net: its min < v is out for a lower cut, its max > v
    for an upper one) leaves out the share of nets closest to `share`, among cuts that leave out at least one net
    and at most 1 - share of them (a cut narrows the space; where values pile up, no cut may qualify: None)."""
    known = [v for v in values if v is not None]
    best = None
    for v in sorted(set(known)):
        if not legal(v):
            continue
        out = sum(1 for x in known if (x < v if lower else x > v)) / len(values)
        if 0 < out <= max(share, 1 - share) and (best is None or abs(out - share) < abs(best[1] - share)):
            best = (v, out)
    return best


def _complement(v: Any, observed: Sequence[Any], lower: bool, lo: Any, hi: Any) -> Optional[tuple[Any, Any]]:
    """The range on the other side of a cut at v: below v for a lower cut ([lo, the largest observed value < v]),
    above it for an upper one; None when no observed value lies there."""
    side = [x for x in observed if (x < v if lower else x > v) and lo <= x <= hi]
    if not side:
        return None
    return (lo, max(side)) if lower else (min(side), hi)


def candidates(data: Mapping[str, Any], space: Space, nets: Sequence[NetSpec], cut: float = 1 / 3) -> list[Restriction]:
    """The restrictions of a space worth testing on these nets (members of it), from the file's structure: ties
    the file does not have yet, lower and upper range cuts, each choice value dropped."""
    out: list[Restriction] = []
    ties = dict(data.get("ties") or {})
    if space.stages["count"].high > 1:
        if ties.get("width") is None and space.stages["width"].size() > 1:
            out.append(Restriction("tie", "ties.width", "ties.width: non_decreasing",
                                   _edit(data, ("ties", "width"), "non_decreasing")))
        if space.stages["depth"].size() > 1:
            for kind in {None: ("non_decreasing", "same"), "non_decreasing": ("same",)}.get(ties.get("depth"), ()):
                out.append(Restriction("tie", "ties.depth", f"ties.depth: {kind}",
                                       _edit(data, ("ties", "depth"), kind)))
        shared: list[str] = []
        for branch in space.branches():
            for name, dist in space.structural_fields(branch).items():
                if dist.size() > 1 and ties.get(name) != "same" and name not in shared:
                    shared.append(name)
        for name in shared:
            out.append(Restriction("tie", f"ties.{name}", f"ties.{name}: same", _edit(data, ("ties", name), "same")))
    for path, dist in _locations(data, space):
        key = ".".join(path)
        if dist.kind == "choice":
            raw = _raw_choices(data, path)  # as written in the file, in the order of dist.values
            for i, value in enumerate(dist.values):
                edited = _edit(data, path, _node(dist, raw[:i] + raw[i + 1:]))
                if path == ("stages", "branch"):
                    edited["stages"].pop(value, None)  # a dropped branch takes its section with it
                out.append(Restriction("drop", key, f"{key}: drop {value}", edited))
            continue
        if not nets:
            continue
        per_net = [_stage_values(n, path) for n in nets]
        observed = sorted({x for v in per_net for x in v})
        lo, hi = dist.values
        texts = {r.text.split(" (")[0] for r in out}
        for lower in (True, False):
            values = [(min(v) if lower else max(v)) if v else None for v in per_net]
            found = _cut_point(values, lambda v: (lo < v <= hi) if lower else (lo <= v < hi), cut, lower)
            if found is None:
                continue
            v = found[0]
            name = "lower" if lower else "upper"
            other = _complement(v, observed, lower, lo, hi)
            for bounds, label in (([v, hi] if lower else [lo, v], f"{name} cut"),
                                  (list(other) if other else None, f"complement of the {name} cut")):
                if bounds is None:
                    continue
                node = _node(dist, bounds)
                text = f"{key}: {dist.describe()} -> {_describe(node)}"
                if text in texts:  # the complement of one cut can be the other cut
                    continue
                texts.add(text)
                out.append(Restriction("cut", key, f"{text} ({label})", _edit(data, path, node)))
    return out


def _raw_choices(data: Mapping[str, Any], path: Sequence[str]) -> list[Any]:
    node: Any = data
    for key in path:
        node = node[key]
    return list(node["choice"])


# ---------------------------------------------------------------------------------------------
# Testing one restriction


def _mean(values: Sequence[float], weights: Sequence[float]) -> float:
    return float(np.average(values, weights=weights)) if sum(weights) > 0 else float(np.mean(values))


@dataclass
class _Tested:
    restriction: Restriction
    space: Optional[Space]
    subset: list[_Net]
    stats: dict[str, Any]
    verdict: str = ""


def _member(space: Space, net: NetSpec, cache: dict) -> bool:
    shape = input_of(net)
    if shape not in cache:
        cache[shape] = space.at(shape)
    return cache[shape].why_not(net) is None


def _solved(key: str) -> bool:
    """Whether the key is a width: widths are solved from the band, so Space.size does not count them."""
    last = key.rsplit(".", 1)[-1]
    return last in ("width", "mid_width") or last in INCEPTION_WIDTHS


def _structures(space: Space) -> float:
    n = space.size()
    return n if math.isfinite(n) else math.nan


def _test(r: Restriction, base: list[_Net], current: Space, before: float, opts: RefineOptions,
          edges: Sequence[float]) -> _Tested:
    nan = math.nan
    stats = {"nets": len(base), "satisfy": 0, "removed": nan, "removed_structures": None, "ks": nan, "ks_all": nan,
             "p_value": nan, "mean_diff": nan, "better": False}
    try:
        space = parse_space(r.data, current.source)
    except (SpaceError, TypeError, KeyError) as e:
        return _Tested(r, None, [], stats, f"invalid: {e}")
    cache: dict = {}
    subset = [n for n in base if _member(space, n.spec, cache)]
    rest = [n for n in base if not _member(space, n.spec, cache)]
    stats["satisfy"] = len(subset)
    stats["removed"] = len(rest) / len(base)
    after = _structures(space)
    if not _solved(r.key) and before > 0 and not math.isnan(before) and not math.isnan(after):
        stats["removed_structures"] = 1 - after / before
    if len(subset) < opts.min_nets or len(rest) < opts.min_nets:
        few = (f"only {len(subset)} nets satisfy it" if len(subset) < opts.min_nets
               else f"it leaves out only {len(rest)} nets")
        return _Tested(r, space, subset, stats, f"not tested: {few} (each side needs {opts.min_nets})")
    ea, eb = [n.error for n in subset], [n.error for n in rest]
    wa, wb = stratified_weights([bin_index(n.flops, edges) for n in subset], [bin_index(n.flops, edges) for n in rest])
    stats.update(subset_errors=tuple(ea), subset_flops=tuple(n.flops for n in subset), rest_errors=tuple(eb),
                 rest_flops=tuple(n.flops for n in rest))
    if wa.sum() <= 0:
        return _Tested(r, space, subset, stats, "not tested: no FLOPs bin holds nets of both sides")
    w_sub = complexity_weights([n.flops for n in subset], edges)
    w_all = complexity_weights([n.flops for n in base], edges)
    stats.update(ks_all=ks_statistic(ea, [n.error for n in base], w_sub, w_all),
                 mean_diff=100 * (_mean(ea, list(wa)) - _mean(eb, list(wb))))
    return _Tested(r, space, subset, stats)


def _judge(t: _Tested, threshold: float, opts: RefineOptions, edges: Sequence[float]) -> None:
    """The within-bin permutation test of a tested candidate against its threshold (its stats filled in)."""
    s = t.stats
    res = ks_stratified_test(s["subset_errors"], s["rest_errors"], s["subset_flops"], s["rest_flops"], edges,
                             threshold=threshold, n_perm=opts.n_perm, max_perm=opts.max_perm, seed=opts.perm_seed)
    s.update(ks=res.ks, p_value=res.p_value, p_low=res.p_low, p_high=res.p_high, permutations=res.permutations,
             decision=res.decision, better=res.up > res.down, ess_subset=res.ess_a, ess_rest=res.ess_b,
             left_out=res.left_out_a + res.left_out_b, shared_bins=res.bins,
             strength=res.ks * math.sqrt(res.ess_a * res.ess_b / (res.ess_a + res.ess_b)))


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
        lines.append(f"# test: complexity-normalized error EDF of the nets that satisfy a restriction vs the rest, KS "
                     f"with a p-value from permutations within FLOPs bins ({o.n_perm} doubled until its "
                     f"{MC_LEVEL:.1%} Monte Carlo interval clears the threshold, at most {o.max_perm}; seed "
                     f"{o.perm_seed}), alpha {o.alpha:g} ({test}), greedy")
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
        return "\n".join(lines) + "\n" + _dump(self.refined)

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


def _count(n: int) -> int | str:
    """10_000_000 -> '10M' where that is exact (as space files write bands), else the number."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return int(n)


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
        if r.state != "COMPLETE" or r.val_acc is None or r.spec is None:
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
        nets.append(_Net(net, 1.0 - float(r.val_acc), float(r.flops or 0) or _flops(net), r.number))
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
    data = _flat(space_data)
    space = parse_space(data, source)
    nets, excluded, why = _nets(records, space)
    if len(nets) < MIN_NETS:
        detail = f" (first: {why})" if why else ""
        raise RefineError(f"{source}: {len(nets)} usable nets ({_counts(excluded) or 'none left out'}){detail}; a "
                          f"refinement needs at least {MIN_NETS} complete nets of the space")
    band = tuple(band) if band is not None else space.flops  # type: ignore[assignment]
    if band is not None and space.flops != band:
        data = _edit(data, ("constraints", "flops"), [_count(band[0]), _count(band[1])])
    shape = input_of(nets[0].spec)
    if shape != space.input and len({input_of(n.spec) for n in nets}) == 1:  # the band holds at the nets' input
        data = _edit(data, ("input",), {"resolution": shape.resolution, "channels": shape.in_channels,
                                        "classes": shape.num_classes})
    space = parse_space(data, source)
    current_data, current, base = data, space, nets
    evaluations: list[Evaluation] = []
    for step in range(1, opts.max_steps + 1):
        bins = opts.bins or max(1, min(10, len(base) // 10))
        edges = log_bins([n.flops for n in base], bins)
        size = _structures(current)
        tested = [_test(r, base, current, size, opts, edges)
                  for r in candidates(current_data, current, [n.spec for n in base], opts.cut)]
        m = sum(1 for t in tested if not t.verdict)
        threshold = opts.threshold(look, step, m)
        contenders = []
        for t in tested:
            if t.verdict:
                continue
            _judge(t, threshold, opts, edges)
            s = t.stats
            mc = (f"{MC_LEVEL:.1%} Monte Carlo interval {s['p_low']:.4f}..{s['p_high']:.4f}, "
                  f"{s['permutations']} permutations")
            if not s["better"]:
                t.verdict = (f"not better: its EDF lies below the rest's where they differ most (mean error "
                             f"{s['mean_diff']:+.2f} points)")
            elif s["decision"] == "not significant":
                t.verdict = f"not significant: p {s['p_value']:.4f} > {threshold:.4f} ({mc})"
            elif s["decision"] == "undecided":
                t.verdict = f"undecided, not kept: p {s['p_value']:.4f} ({mc}) holds the threshold {threshold:.4f}"
            elif s["removed"] < opts.min_removed:
                t.verdict = f"removes too little: {s['removed']:.0%} of the nets < {opts.min_removed:.0%}"
            else:
                contenders.append(t)
        # the strongest first, by a statistic free of Monte Carlo error: KS times sqrt(n_a n_b / (n_a + n_b)) of
        # the effective sizes (the asymptotic KS scale)
        contenders.sort(key=lambda t: (-t.stats["strength"], t.restriction.text))
        chosen = None
        in_band: dict[int, float] = {}
        for t in contenders:
            if chosen is not None:
                t.verdict = (f"significant, but {chosen.restriction.text} was kept first: tested again in step "
                             f"{step + 1}")
                continue
            if band is not None:
                share = in_band_share(t.space.at(shape), band, opts.in_band_draws, opts.seed)
                in_band[id(t)] = share
                if share < opts.min_in_band:
                    t.verdict = f"its space lands in the band in {share:.0%} of draws < {opts.min_in_band:.0%}"
                    continue
            chosen = t
            t.verdict = "kept"
        for t in tested:
            s = t.stats
            evaluations.append(Evaluation(
                step=step, restriction=t.restriction, nets=s["nets"], satisfy=s["satisfy"], removed=s["removed"],
                removed_structures=s["removed_structures"], ks=s["ks"], ks_all=s["ks_all"], p_value=s["p_value"],
                mean_diff=s["mean_diff"], better=s["better"], threshold=threshold, in_band=in_band.get(id(t)),
                kept=t is chosen, verdict=t.verdict, p_low=s.get("p_low", math.nan),
                p_high=s.get("p_high", math.nan), permutations=s.get("permutations", 0),
                ess_subset=s.get("ess_subset", math.nan), ess_rest=s.get("ess_rest", math.nan),
                left_out=s.get("left_out", 0), shared_bins=s.get("shared_bins", 0),
                subset_errors=s.get("subset_errors", ()),
                subset_flops=s.get("subset_flops", ()), rest_errors=s.get("rest_errors", ()),
                rest_flops=s.get("rest_flops", ())))
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


# ---------------------------------------------------------------------------------------------
# Rounds: sample, train, refine, repeat


@dataclass(frozen=True)
class StoredStudy:
    """A stored study as refine reads it: its records, what it was made with, and its stored settings."""

    records: list[TrialRecord]
    info: Optional[StudyInfo]
    config: Mapping[str, Any]

    @property
    def band(self) -> Optional[tuple[int, int]]:
        """The FLOPs band it sampled in, where its settings name one."""
        flops = self.config.get("flops")
        return (int(flops[0]), int(flops[1])) if flops else None


def load_records(study: str, storage: str) -> StoredStudy:
    """The records of a stored study and what it was made with; RefineError if there is no such study."""
    from ..study.record import read_config, read_info
    from ..study.config import StudyError
    from ..study.storage import load_existing

    try:
        loaded = load_existing(study, storage)
    except StudyError as e:
        raise RefineError(str(e)) from None
    return StoredStudy([TrialRecord.from_trial(t) for t in loaded.get_trials(deepcopy=False)], read_info(loaded),
                       read_config(loaded))


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
            f"(a Monte Carlo interval touched a threshold; more --max-permutations narrows it)")


def _existing_keys(storage: str, study: str) -> set[str]:
    try:
        records = load_records(study, storage).records
    except RefineError:
        return set()
    return {r.candidate_key for r in records if r.candidate_key is not None}


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
    from .. import data as nasx_data
    from ..study import Candidate, StudyConfig, run_study
    from ..study.config import study_space

    opts = (options or RefineOptions()).check()
    if rounds < 1:
        raise RefineError(f"--rounds {rounds}: must be >= 1")
    if samples is not None and samples < MIN_NETS:
        raise RefineError(f"--samples {samples}: a round needs at least {MIN_NETS} nets")
    note = on_note or (lambda _: None)
    cfg = config or StudyConfig()
    info = None
    first_records: Optional[list[TrialRecord]] = None
    if study is not None:
        storage = cfg.storage or str(Path(cfg.studies_dir) / f"{study}.journal")
        stored = load_records(study, storage)
        first_records, info = stored.records, stored.info
        cfg = dataclasses.replace(cfg, flops=cfg.flops or stored.band)
        if space is None:
            if info is None:
                raise RefineError(f"study {study!r} was not made by nasx: give its space with --space")
            space, corner = info.space, corner or info.proxy.get("corner")
        name = name or study
        cfg = dataclasses.replace(cfg, storage=storage)
        if info is not None:  # later rounds train on the study's own proxy
            cfg = dataclasses.replace(cfg, dataset=info.dataset, epochs=info.epochs, fraction=info.fraction,
                                      val_size=info.val_size, seed=info.seed,
                                      batch_size=info.proxy.get("batch_size", cfg.batch_size))
    if space is None:
        raise RefineError("give a space (--space) or an existing study (--study)")
    corner = None if corner == "none" else corner
    data, parsed = space_mapping(space, corner)
    if info is not None and info.space_hash is not None and info.space_hash != parsed.content_hash:
        raise RefineError(f"study {study!r} was made from another version of {space!r}"
                          f"{f' (corner {corner})' if corner else ''}; restore the file or give the one it used")
    name = name or (Path(space).stem + (f"-{corner}" if corner else ""))
    band = cfg.flops or parsed.flops
    if band is None:
        raise RefineError(f"{space}: the space has no FLOPs band; give one (--flops LO:HI)")
    storage = cfg.storage or str(Path(cfg.studies_dir) / f"refine-{name}.journal")
    out_dir = Path(out) if out is not None else Path("reports") / f"refine-{name}"
    n = samples or (sum(1 for r in first_records if r.state == "COMPLETE") if first_records else 48)
    cfg = dataclasses.replace(cfg, storage=storage, flops=band, test=False, sampler="random", corner=None)
    run = RefineRun(name=name, out=out_dir, storage=storage, rounds=[], band=band, samples=n, options=opts)
    shape: Optional[InputShape] = None
    space_name, space_corner = str(space), corner
    for k in range(1, rounds + 1):
        label = space_name + (f" (corner {space_corner})" if space_corner else "")
        # the earlier rounds that sampled this same space (it kept no restriction): their nets are judged with ours
        same = [r for r in run.rounds if _space_key(r.refinement.data) == _space_key(data)]
        pool = f"; its refinement judges rounds {_span([r.index for r in same] + [k])} pooled" if same else ""
        if k == 1 and first_records is not None:
            records, study_name, trained = first_records, study, False
        else:
            study_name, trained = round_study(name, k), True
            round_cfg = dataclasses.replace(cfg, space=space_name, corner=space_corner, study=study_name)
            if shape is None:
                shape = nasx_data.load(cfg.dataset, data_dir=cfg.data_dir, val_size=cfg.val_size or 0.1,
                                       seed=cfg.seed, download=cfg.download).input
            drawn = sample(study_space(round_cfg).at(shape), _seed(cfg.seed, k), n, flops=band)
            foreign = _existing_keys(storage, study_name) - {f"{s.spec.id}:{cfg.seed}" for s in drawn}
            if foreign:
                from ..study.config import redact

                raise RefineError(f"study {study_name!r} in {redact(str(storage))} holds {len(foreign)} net(s) not drawn from "
                                  f"{label} (another refinement?); use another --name or --storage")
            again = f" (the space of round {_span([r.index for r in same])} again)" if same else ""
            note(f"round {k}: {n} nets of {label}{again} in FLOPs {band[0]:,}..{band[1]:,} -> study "
                 f"{study_name}{pool}")
            summary = run_study(round_cfg, progress=progress, train_fn=train_fn, on_note=on_note,
                                candidates=[Candidate(s.spec, seed=cfg.seed, tags={"round": k}) for s in drawn])
            snap = summary.snapshot
            note(f"round {k}: {snap.complete} complete, {snap.failed} failed in {summary.wall_time:.0f} s")
            if summary.interrupted:
                run.interrupted = True
                return run
            records = load_records(study_name, storage).records
        # earlier rounds first: a net drawn again in a later round is judged once
        pooled = [rec for r in same for rec in r.records] + list(records)
        studies = ", ".join([r.study for r in same] + [study_name])
        try:
            refinement = refine(pooled, data, source=label, band=band, name=f"{name}-r{k + 1}", options=opts,
                                look=k)
        except RefineError as e:
            raise RefineError(f"round {k} ({'studies' if same else 'study'} {studies}): {e}") from None
        if check_seeds > 1:
            run.notes.append(_seed_check(refinement, pooled, data, label, band, f"{name}-r{k + 1}", opts, k,
                                         check_seeds))
            note(run.notes[-1])
        own, _, _ = _nets(records, parse_space(refinement.data, label))
        this = Round(index=k, study=study_name, space=space_name, corner=space_corner, records=records,
                     refinement=refinement, file=out_dir / f"round-{k + 1}.yaml", trained=trained,
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
        run.rounds.append(this)
        data, space_name, space_corner = dict(refinement.refined), str(this.file), None
        if not kept:
            following = [r.index for r in same] + [k, k + 1]
            run.notes.append(f"round {k} kept no restriction: the space did not change, so " + (
                f"round {k + 1} samples it again and judges rounds {_span(following)} pooled" if k < rounds else
                f"another round (--rounds {k + 1}, the same command otherwise) would sample it again and judge "
                f"rounds {_span(following)} pooled"))
            note(run.notes[-1])
    last = run.rounds[-1]
    run.refined.parent.mkdir(parents=True, exist_ok=True)
    last.refinement.write(run.refined, title=f"nasx refine {name}: the refined space after {len(run.rounds)} "
                                             f"round(s) (last study {last.study})", judged=last.judged_text())
    return run
