"""Design spaces as files: parse a space YAML, check membership of a spec, count its structural size.

A space is a family of nets: an input, stem and head choices, a number of stages, and per stage
the distributions of depth, width, branch type and the branch's own fields, with optional ties
across stages and a default FLOPs/params band; or, instead of per-stage choices, the parameters of
a rule that lays out the stages (`rule: regnet`: d, w_0, w_a, w_m, group width). Drawing members
(i.i.d. or from an Optuna trial) lives in `nasx.space.sampling` (which imports this module, never the
reverse); the format is documented in docs/spaces.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .. import units
from ..errors import NasxError
from ..net.fit import InputShape
from ..net.regnet import QUANTUM, RuleStage, rule_parameters
from ..net.spec import (
    AggregatedBlock,
    BRANCHES,
    BlockPath,
    Head,
    InceptionBlock,
    MultiBranchBlock,
    NetSpec,
    PlainBlock,
    Pool,
    ResidualBlock,
    TOO_DEEP,
    SpecError,
    Stem,
    parse_yaml,
    paths_from,
    read_text,
)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # a pathlib.Path, or a file in a zipped package

__all__ = [
    "SpaceError",
    "Dist",
    "PerStage",
    "RegNetRule",
    "Space",
    "Membership",
    "SPACES_DIR",
    "SPACES_PATH_VAR",
    "load_space",
    "shipped_spaces",
    "known_spaces",
    "parse_count",
    "parse_band",
    "overlay",
    "mapping_hash",
]

SPACES_DIR: Traversable = resources.files("nasx").joinpath("spaces")  # package data (pyproject.toml), in a wheel too
WHOLE_SPACE = "none"  # the corner name that asks for the whole space
SPACES_PATH_VAR = "NASX_SPACES_PATH"  # folders of a team's own spaces, os.pathsep-separated, searched before SPACES_DIR


class SpaceError(NasxError, ValueError):
    """A malformed space file or an impossible request of a space; the message names file and key."""


# ---------------------------------------------------------------------------------------------
# Distributions

DIST_KINDS = ("choice", "int", "log_int", "power_of_two", "float", "log_float")


def parse_count(text: Any) -> int:
    """'150M' -> 150_000_000, '1.2G', '500k', or a plain number (`nasx.units`); SpaceError otherwise."""
    try:
        return units.parse_count(text)
    except ValueError as e:
        raise SpaceError(str(e)) from None


def parse_band(text: Any, what: str = "band") -> tuple[int, int]:
    """'100M:150M' or [lo, hi] -> (lo, hi), checked 0 < lo <= hi."""
    parts = text.split(":") if isinstance(text, str) else text
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise SpaceError(f"{what}: {text!r} is not LO:HI")
    try:
        lo, hi = (parse_count(p) for p in parts)
    except SpaceError as e:
        raise SpaceError(f"{what}: {e}") from None
    if lo <= 0 or lo > hi:
        raise SpaceError(f"{what}: {lo} > {hi}" if lo > hi else f"{what}: low end {lo} must be > 0")
    return lo, hi


@dataclass(frozen=True)
class Dist:
    """One parameter's distribution: fixed, choice, int, log_int, power_of_two, float or log_float."""

    kind: str
    values: tuple  # the choices (fixed: one), or (low, high)

    @property
    def low(self) -> Any:
        return self.values[0] if self.kind not in ("choice", "fixed") else min(self.values)

    @property
    def high(self) -> Any:
        return self.values[-1] if self.kind not in ("choice", "fixed") else max(self.values)

    def support(self) -> tuple | None:
        """Every value, or None for a continuous range."""
        if self.kind in ("fixed", "choice"):
            return self.values
        lo, hi = self.values
        if self.kind in ("int", "log_int"):
            return tuple(range(lo, hi + 1))
        if self.kind == "power_of_two":
            return tuple(2**e for e in range(lo.bit_length() - 1, hi.bit_length()))
        return None

    def size(self) -> float:
        values = self.support()
        return math.inf if values is None else len(values)

    def holds(self, value: Any) -> bool:
        if self.kind in ("fixed", "choice"):
            return any(_same(value, v) for v in self.values)
        lo, hi = self.values
        if self.kind in ("float", "log_float"):
            return isinstance(value, (int, float)) and lo - 1e-9 <= value <= hi + 1e-9
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            return False
        return self.kind != "power_of_two" or value & (value - 1) == 0

    def describe(self) -> str:
        if self.kind == "fixed":
            return _label(self.values[0]) if isinstance(self.values[0], (Pool, tuple)) else repr(self.values[0])
        if self.kind == "choice":
            return "{" + ", ".join(map(_label, self.values)) + "}"
        lo, hi = self.values
        return f"{lo}..{hi}" + ("" if self.kind in ("int", "float") else f" ({self.kind})")

    def draw(self, rng) -> Any:
        """One i.i.d. value from a numpy Generator."""
        if self.kind in ("fixed", "choice"):
            return self.values[int(rng.integers(len(self.values)))]
        lo, hi = self.values
        if self.kind == "int":
            return int(rng.integers(lo, hi + 1))
        if self.kind == "log_int":
            return min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))
        if self.kind == "power_of_two":
            return 2 ** int(rng.integers(lo.bit_length() - 1, hi.bit_length()))
        if self.kind == "float":
            return float(rng.uniform(lo, hi))
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    def suggest(self, trial, name: str) -> Any:
        """The value an Optuna trial suggests under `name` (a fixed value is not a parameter)."""
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "choice":
            if all(v is None or isinstance(v, (bool, int, float, str)) for v in self.values):
                return trial.suggest_categorical(name, list(self.values))
            labels = [_label(v) for v in self.values]  # Pools and other mappings: by label
            return self.values[labels.index(trial.suggest_categorical(name, labels))]
        lo, hi = self.values
        if self.kind in ("int", "log_int"):
            return trial.suggest_int(name, lo, hi, log=self.kind == "log_int")
        if self.kind == "power_of_two":
            return trial.suggest_categorical(name, list(self.support()))
        return trial.suggest_float(name, lo, hi, log=self.kind == "log_float")

    def nearest(self, x: float, quantum: int = 1) -> int | None:
        """The legal integer value nearest to x in log scale that is a multiple of `quantum`, or None."""
        if self.kind in ("int", "log_int"):
            lo, hi = -(-self.values[0] // quantum) * quantum, self.values[1] // quantum * quantum
            if lo > hi:
                return None
            k = x / quantum
            below = max(lo, min(hi, math.floor(k) * quantum))
            above = max(lo, min(hi, math.ceil(k) * quantum))
            if below == above or below <= 0:
                return above
            return below if x * x < below * above else above  # geometric midpoint
        values = [v for v in (self.support() or ()) if isinstance(v, int) and v % quantum == 0]
        if not values:
            return None
        return min(values, key=lambda v: abs(math.log(v) - math.log(max(x, 1e-9))))


@dataclass(frozen=True)
class PerStage:
    """A fixed value per stage position; the last one repeats (e.g. strides 1, 2, 2, ...)."""

    values: tuple

    def at(self, index: int) -> Any:
        return self.values[min(index, len(self.values) - 1)]

    def size(self) -> float:
        return 1.0  # placed, not drawn


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _label(value: Any) -> str:
    if isinstance(value, Pool):
        return f"pool{value.kernel}s{value.stride}p{value.padding}" + ("c" if value.ceil_mode else "")
    if isinstance(value, tuple) and value and all(isinstance(p, BlockPath) for p in value):
        return "[" + " | ".join(_path_label(p) for p in value) + "]"  # a multibranch module's paths
    return str(value)


def _path_label(path: BlockPath) -> str:
    """e.g. `avg3s1p1x, 1x1 64`, `1x1 256, 3x3/2 384 V`, `1x1 384, (1x3 256 + 3x1 256)`: every field, so labels differ."""
    def conv(c) -> str:
        kh, kw = (c.kernel, c.kernel) if isinstance(c.kernel, int) else c.kernel
        return f"{kh}x{kw}" + (f"/{c.stride}" if c.stride != 1 else "") + f" {c.width}" + (" V" if c.padding == "valid" else "")
    parts = []
    if path.pool is not None:
        pool = path.pool
        parts.append(f"{pool.kind}{pool.kernel}s{pool.stride}p{pool.padding}" + ("c" if pool.ceil_mode else "")
                     + ("" if pool.count_include_pad else "x"))
    parts += [conv(c) for c in path.convs]
    if path.split:
        parts.append("(" + " + ".join(conv(c) for c in path.split) + ")")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# The space


BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "plain": ("kernel", "bn", "bias"),
    "residual": ("kind", "bottleneck_ratio", "shortcut"),
    "aggregated": ("cardinality", "bottleneck_ratio", "shortcut"),
    "inception": ("c1x1", "c3x3_reduce", "c3x3", "c5x5_reduce", "c5x5", "pool_proj", "kernel_5x5", "residual",
                  "factorize", "n", "pool_kind", "scale"),
    "multibranch": ("paths", "residual", "scale", "activation"),  # paths as a spec file writes them; fixed widths
}
INCEPTION_WIDTHS = ("c1x1", "c3x3_reduce", "c3x3", "c5x5_reduce", "c5x5", "pool_proj")
_BLOCK_CLASS = {"plain": PlainBlock, "residual": ResidualBlock, "aggregated": AggregatedBlock,
                "inception": InceptionBlock, "multibranch": MultiBranchBlock}
STAGE_KEYS = ("count", "depth", "width", "branch", "stride", "pool") + BRANCHES
TIE_KINDS = {"stem_width": ("stage1",), "width": ("same", "double", "non_decreasing"),
             "depth": ("same", "non_decreasing")}
_TOP_KEYS = ("name", "description", "input", "constraints", "stem", "head", "stages", "ties", "corners")


RULES = ("regnet",)
RULE_KEYS = ("rule", "count", "depth", "w_0", "w_a", "w_m", "group_width", "bottleneck_ratio", "stride")
RULE_PARAMETERS = ("depth", "w_0", "w_a", "w_m", "group_width", "bottleneck_ratio")


@dataclass(frozen=True)
class RegNetRule:
    """Stages laid out by the RegNet rule (nasx.net.regnet): distributions of d (blocks in all), w_0, w_a,
    w_m, group width and bottleneck ratio, the stage counts it may give, and the strides per stage."""

    count: Dist
    depth: Dist
    w_0: Dist
    w_a: Dist
    w_m: Dist
    group_width: Dist
    bottleneck_ratio: Dist
    stride: Dist | PerStage

    def stride_at(self, index: int) -> int:
        """The stride of the stage at `index` (0-based)."""
        return self.stride.at(index) if isinstance(self.stride, PerStage) else self.stride.values[0]

    def w_0_values(self) -> tuple[int, ...]:
        """The legal w_0: multiples of 8 that its distribution holds."""
        return tuple(v for v in range(QUANTUM, int(self.w_0.high) + 1, QUANTUM) if self.w_0.holds(v))

    def reasons(self, stages: tuple) -> Iterator[str]:
        """Why these stages are not the rule's output for any parameters in the ranges (first reason first)."""
        yield from _check(self.count, len(stages), "stages (count)")
        for i, stage in enumerate(stages):
            where, block = f"stage {i + 1}", stage.block
            if not isinstance(block, AggregatedBlock):
                yield f"{where}.branch: {block.branch} not in 'aggregated' (rule regnet)"
                return
            if block.shortcut != "projection":
                yield f"{where}.block.shortcut: {block.shortcut} is not projection (rule regnet)"
            if stage.stride != self.stride_at(i):
                yield f"{where}.stride: {stage.stride} is not {self.stride_at(i)} (rule regnet)"
            if stage.pool is not None or stage.aux is not None:
                yield f"{where}.{'pool' if stage.aux is None else 'aux'}: not part of the rule (rule regnet)"
            yield from _check(self.bottleneck_ratio, block.w_b / stage.width, f"{where}.block.bottleneck_ratio")
        yield from _check(self.depth, sum(s.depth for s in stages), "stages (depth d, blocks in all)")
        ratios = {s.block.w_b / s.width for s in stages}
        if len(ratios) > 1:
            yield f"stages: bottleneck ratios {sorted(ratios)} differ (rule regnet: one for all stages)"
            return
        rule = tuple(RuleStage(s.depth, s.width, s.block.group_width) for s in stages)
        if stages and self.parameters(rule, ratios.pop()) is None:
            yield (f"stages: no d, w_0, w_a, w_m, group width in the space's ranges give d=("
                   + ",".join(str(s.depth) for s in rule) + ") w=(" + ",".join(str(s.width) for s in rule)
                   + ") gw=(" + ",".join(str(s.group_width) for s in rule) + ") (rule regnet)")

    def parameters(self, stages: tuple[RuleStage, ...], bottleneck_ratio: float = 1.0):
        """Some RegNetParams in the ranges whose rule gives exactly these stages, or None."""
        return rule_parameters(stages, group_widths=self.group_width.support() or (), w_0=self.w_0.holds,
                               w_a=_intervals(self.w_a), w_m=_intervals(self.w_m), bottleneck_ratio=bottleneck_ratio)

    def size(self) -> float:
        """Parameter settings (each gives at most one layout; w_0 and the scale of w_a are solved, not
        drawn), or inf where w_a or w_m is continuous."""
        n = 1.0
        for name in RULE_PARAMETERS:
            if name != "w_0":
                n *= getattr(self, name).size()
        return n


def _intervals(dist: Dist) -> tuple[tuple[float, float], ...]:
    """A distribution's values as [low, high] intervals: one range, or a point per value."""
    if dist.kind in ("fixed", "choice"):
        return tuple((v, v) for v in dist.values)
    return (tuple(dist.values),)


@dataclass(frozen=True)
class Membership:
    """Truthy when the spec is a member; `reason` names the offending field otherwise."""

    reason: str | None = None

    def __bool__(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Space:
    """A parsed space file. Distributions are `Dist`; stride and pool may also be `PerStage`."""

    name: str
    description: str
    source: str  # the file it came from, for messages
    resolution: int
    in_channels: int
    num_classes: int
    flops: tuple[int, int] | None  # default band
    params: tuple[int, int] | None
    stem: dict[str, Dist]
    head: dict[str, Dist]
    stages: dict[str, Any]  # count, depth, width, branch, stride, pool: Dist | PerStage
    blocks: dict[str, dict[str, Any]]  # branch -> field -> Dist (plus stride/pool overrides)
    ties: dict[str, str] = field(default_factory=dict)
    rule: RegNetRule | None = None  # stages laid out by a rule: then `stages` and `blocks` are empty

    # -- derived --------------------------------------------------------------------------------
    content_hash: str = ""  # of the parsed file: a study resumed after the file changed is another experiment
    corners: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # name -> overrides
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the file's mapping
    corner_name: str | None = None  # set on a space that is one of its file's corners

    def with_corner(self, name: str | None) -> "Space":
        """The named corner, or the whole space for None or "none" (what a `--corner` option hands over)."""
        return self if name in (None, WHOLE_SPACE) else self.corner(name)

    def corner(self, name: str) -> "Space":
        """The named corner of the space: the file's mapping with the corner's keys laid over it (a sub-space
        that a smaller budget searches, e.g. `cpu`)."""
        if name not in self.corners:
            known = ", ".join(sorted(self.corners)) or "none"
            raise SpaceError(f"{self.source}: no corner {name!r} (corners: {known})")
        merged = overlay({k: v for k, v in self.data.items() if k != "corners"}, self.corners[name])
        narrowed = parse_space(merged, f"{self.source} (corner {name})")
        return dataclasses.replace(narrowed, source=self.source, corner_name=name, corners=self.corners,
                                   data=self.data, resolution=self.resolution, in_channels=self.in_channels,
                                   num_classes=self.num_classes)

    def at(self, shape: InputShape | int) -> "Space":
        """The same family for another input: a dataset's InputShape, or an image side alone (e.g. 224)."""
        if isinstance(shape, int):
            return dataclasses.replace(self, resolution=shape)
        return dataclasses.replace(self, resolution=shape.resolution, in_channels=shape.in_channels,
                                   num_classes=shape.num_classes)

    @property
    def input(self) -> InputShape:
        return InputShape(self.resolution, self.in_channels, self.num_classes)

    def branches(self) -> tuple[str, ...]:
        return tuple(self.stages["branch"].values)

    def placement(self, branch: str, key: str, index: int) -> Any:
        """Stride or pool of the stage at `index` (0-based) with this branch: a value or a Dist."""
        entry = self.blocks.get(branch, {}).get(key, self.stages[key])
        return entry.at(index) if isinstance(entry, PerStage) else entry

    def tied(self, name: str) -> str | None:
        return self.ties.get(name)

    # -- membership -----------------------------------------------------------------------------
    def why_not(self, spec: NetSpec) -> str | None:
        """None if the spec is a member, else one line naming the first offending field."""
        for reason in self._reasons(spec):
            return reason
        return None

    def contains(self, spec: NetSpec) -> Membership:
        return Membership(self.why_not(spec))

    # long (~60 lines): every membership rule of a net in the order its messages are read
    def _reasons(self, spec: NetSpec) -> Iterator[str]:
        for name, value, want in (("resolution", spec.resolution, self.resolution),
                                  ("in_channels", spec.in_channels, self.in_channels),
                                  ("num_classes", spec.num_classes, self.num_classes)):
            if value != want:
                yield f"{name}: {value} is not the space's {want}"
        stages = spec.stages
        yield from _check(self.stem["kind"], spec.stem.kind, "stem.kind")
        if spec.stem.kind != "none":
            if self.tied("stem_width") == "stage1":
                if stages and spec.stem.width != stages[0].width:
                    yield f"stem.width: {spec.stem.width} is not stage 1's width {stages[0].width} (tie stem_width: stage1)"
            else:
                yield from _check(self.stem["width"], spec.stem.width, "stem.width")
        if spec.stem.kind == "googlenet":
            yield from _check(self.stem["mid_width"], spec.stem.mid_width, "stem.mid_width")
        for name, dist in self.head.items():
            yield from _check(dist, getattr(spec.head, name), f"head.{name}")
        if self.rule is not None:
            yield from self.rule.reasons(stages)
            return
        yield from _check(self.stages["count"], len(stages), "stages (count)")
        first: dict[str, Any] = {}
        for i, stage in enumerate(stages):
            where = f"stage {i + 1}"
            branch = stage.block.branch
            yield from _check(self.stages["depth"], stage.depth, f"{where}.depth")
            yield from _check(self.stages["branch"], branch, f"{where}.branch")
            for key in ("stride", "pool"):  # a per_stage entry places a value, not a distribution
                placed = self.placement(branch, key, i)
                placed = placed if isinstance(placed, Dist) else Dist("fixed", (placed,))
                yield from _check(placed, getattr(stage, key), f"{where}.{key}")
            block = stage.block
            dists = self.blocks[branch]
            values = {f: getattr(block, f, None) for f in BLOCK_FIELDS[branch]}
            if branch == "aggregated":
                values["bottleneck_ratio"] = block.w_b / stage.width  # derived: the spec stores group_width
            if branch == "residual" and block.kind == "basic":
                values.pop("bottleneck_ratio")  # irrelevant to a basic block
            if branch == "inception":  # irrelevant unless asymmetric / residual (the sampler keeps the defaults)
                if block.factorize != "asymmetric":
                    values.pop("n")
                if not block.residual:
                    values.pop("scale")
            if branch == "multibranch" and not block.residual:
                values.pop("scale")
                values.pop("activation")
            for name, value in values.items():
                dist = dists[name]
                dist = Dist("fixed", (dist.at(i),)) if isinstance(dist, PerStage) else dist  # placed per stage
                yield from _check(dist, value, f"{where}.block.{name}")
                if self.tied(name) == "same":
                    key = f"{branch}.{name}"
                    if key in first and not _same(first[key], value):
                        yield f"{where}.block.{name}: {value} differs from {first[key]} (tie {name}: same)"
                    first.setdefault(key, value)
            if drawn_width(stage):
                yield from self._width_reasons(stages, i)
            if i > 0 and self.tied("depth") in ("same", "non_decreasing"):
                prev = stages[i - 1].depth
                if (self.tied("depth") == "same" and stage.depth != prev) or stage.depth < prev:
                    yield f"{where}.depth: {stage.depth} breaks the tie depth: {self.tied('depth')} ({prev} before)"

    def _width_reasons(self, stages, i: int) -> Iterator[str]:
        width, where, tie = stages[i].width, f"stage {i + 1}.width", self.tied("width")
        # ties hold among the stages whose width is drawn (a plain inception stage's is the sum of its branches)
        before = [s.width for s in stages[:i] if drawn_width(s)]
        if not before or tie is None:
            yield from _check(self.stages["width"], width, where)
            return
        prev = before[-1]
        if tie == "non_decreasing":
            yield from _check(self.stages["width"], width, where)
            if width < prev:
                yield f"{where}: {width} < {prev} before it (tie width: non_decreasing)"
        elif width != (2 * prev if tie == "double" else prev):
            yield f"{where}: {width} is not {'2 x' if tie == 'double' else ''} {prev} (tie width: {tie})"

    # -- size ------------------------------------------------------------------------------------
    def size(self) -> float:
        """Number of distinct structures, widths excluded (they are solved from the band); inf if a
        structural parameter is continuous."""
        fixed = 1.0
        for name, dist in self.stem.items():
            if name not in ("width", "mid_width"):
                fixed *= dist.size()
        for dist in self.head.values():
            fixed *= dist.size()
        if self.rule is not None:
            return fixed * self.rule.size()
        total = 0.0
        branches = self.branches()
        for k in self.stages["count"].support() or ():
            for assignment in product(branches, repeat=k):
                n = _tied_count(self.stages["depth"], self.tied("depth"), k)
                for name_branch in set(assignment):
                    for f, dist in self.structural_fields(name_branch).items():
                        if self.tied(f) == "same":
                            n *= dist.size()
                for i, b in enumerate(assignment):
                    for key in ("stride", "pool"):
                        p = self.placement(b, key, i)
                        n *= p.size() if isinstance(p, Dist) else 1
                    for f, dist in self.structural_fields(b).items():
                        if self.tied(f) != "same":
                            n *= dist.size()
                total += n
        return total * fixed

    def structural_fields(self, branch: str) -> dict[str, Dist]:
        """A branch's fields that are drawn, not solved (everything but inception branch widths)."""
        return {f: d for f, d in self.blocks[branch].items() if f in BLOCK_FIELDS[branch] and f not in INCEPTION_WIDTHS}

    def describe_size(self) -> str:
        n = self.size()
        return "∞ (continuous)" if math.isinf(n) else f"{int(n):,}"



def drawn_width(stage) -> bool:
    """Whether a stage's width is its own parameter (not the sum of inception branch widths, nor a
    non-residual multibranch module's concatenation)."""
    return not (isinstance(stage.block, (InceptionBlock, MultiBranchBlock)) and not stage.block.residual)


def _check(dist: Any, value: Any, where: str) -> Iterator[str]:
    if isinstance(dist, Dist) and not dist.holds(value):
        shown = _label(value)
        verb = "outside" if dist.kind not in ("fixed", "choice") else "not in"
        yield f"{where}: {shown} {verb} {dist.describe()}"


def _tied_count(dist: Dist, tie: str | None, k: int) -> float:
    m = dist.size()
    if math.isinf(m):
        return m
    if tie == "same":
        return m
    if tie == "non_decreasing":
        return math.comb(int(m) + k - 1, k)
    return m**k


# ---------------------------------------------------------------------------------------------
# Parsing


class _Where:
    """The file and key path that a parse error names."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str) -> SpaceError:
        return SpaceError(f"{self.source}: {key}: {message}")


def _mapping(node: Any, key: str, known: tuple[str, ...], at: _Where) -> dict:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise at.fail(key, f"expected a mapping, got {type(node).__name__}")
    for name in node:
        if name not in known:
            raise at.fail(f"{key}.{name}", f"unknown key (known: {', '.join(known)})")
    return node


def _paths_dist(node: Any, key: str, at: _Where) -> Dist | PerStage:
    """A multibranch section's `paths`: one module's path list, {choice: [...]} or {per_stage: [...]} of them."""
    if node is None:
        raise at.fail(key, "missing (the module's paths, as a spec file writes them)")
    try:
        if isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ("choice", "per_stage"):
            kind, arg = next(iter(node.items()))
            if not isinstance(arg, list) or not arg:
                raise at.fail(key, f"{kind} needs a non-empty list of path lists")
            modules = tuple(paths_from(v, "") for v in arg)
        else:
            kind, modules = "fixed", (paths_from(node, ""),)
        for paths in modules:
            MultiBranchBlock(paths=paths)._check("")  # each conv and pool as a spec would check it
        return PerStage(modules) if kind == "per_stage" else Dist(kind, modules)
    except SpecError as e:
        raise at.fail(key, str(e).lstrip(".").removeprefix("paths: ")) from None


def _dist(node: Any, key: str, at: _Where, per_stage: bool = False) -> Dist | PerStage:
    if isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DIST_KINDS + ("per_stage",):
        kind, arg = next(iter(node.items()))
        if kind == "per_stage":
            if not per_stage:
                raise at.fail(key, "per_stage is only for stride, pool and multibranch fields")
            if not isinstance(arg, list) or not arg:
                raise at.fail(key, "per_stage needs a non-empty list")
            return PerStage(tuple(_value(v, key, at) for v in arg))
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise at.fail(key, "empty choice")
            return Dist("choice", tuple(_value(v, key, at) for v in arg))
        if not isinstance(arg, list) or len(arg) != 2:
            raise at.fail(key, f"{kind} needs [min, max]")
        lo, hi = arg
        numeric = (int, float) if kind in ("float", "log_float") else (int,)
        if any(isinstance(v, bool) or not isinstance(v, numeric) for v in (lo, hi)):
            raise at.fail(key, f"{kind} bounds must be {'numbers' if len(numeric) == 2 else 'integers'}, got {lo!r}, {hi!r}")
        if lo > hi:
            raise at.fail(key, f"min {lo} > max {hi}")
        if kind != "float" and kind != "int" and lo <= 0:
            raise at.fail(key, f"{kind} needs min > 0, got {lo}")
        if kind == "power_of_two" and (lo & (lo - 1) or hi & (hi - 1)):
            raise at.fail(key, f"power_of_two bounds must be powers of two, got {lo}, {hi}")
        return Dist(kind, (lo, hi))
    return Dist("fixed", (_value(node, key, at),))


def _value(node: Any, key: str, at: _Where) -> Any:
    if isinstance(node, dict) and key.split(".")[-1] == "pool":
        try:
            return Pool(**node)
        except TypeError as e:
            raise at.fail(key, f"not a pool: {e}") from None
    if isinstance(node, (dict, list)):
        raise at.fail(key, f"expected a value or one of {', '.join(DIST_KINDS)}, got {node!r}")
    return node


def _typed(dist: Any, example: Any, key: str, at: _Where) -> Any:
    """The dist, after checking that its values have the type of the field's default (int, float, str, bool)."""
    if example is None or not isinstance(dist, Dist):
        return dist
    kind = bool if isinstance(example, bool) else (int, float) if isinstance(example, (int, float)) else type(example)
    for value in dist.values:
        wrong = not isinstance(value, kind) or (kind != bool and isinstance(value, bool))
        if isinstance(example, int) and not isinstance(example, bool) and isinstance(value, float) and not value.is_integer():
            wrong = True
        if wrong:
            want = {bool: "true or false", str: "a name"}.get(kind, "a number")  # type: ignore[arg-type]
            raise at.fail(key, f"{value!r} is not {want}")
    return dist


def _field_default(cls: type, name: str) -> Any:
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def parse_space(data: Any, source: str) -> Space:
    """A Space from the mapping of a space file; SpaceError names `source` and the key."""
    at = _Where(source)
    top = _mapping(data, "space", _TOP_KEYS, at)
    if not top:
        raise SpaceError(f"{source}: empty space file")
    name = top.get("name") or Path(source).stem
    numbers, bands = _parse_input(top, at)
    stem, head = _parse_stem_head(top, at)
    description = str(top.get("description", "")).strip()
    if isinstance(top.get("stages"), dict) and "rule" in top["stages"]:
        if top.get("ties"):
            raise at.fail("ties", "a rule space has none (the rule ties its stages)")
        return Space(name=str(name), description=description, source=source, resolution=numbers["resolution"],
                     in_channels=numbers["channels"], num_classes=numbers["classes"], flops=bands["flops"],
                     params=bands["params"], stem=stem, head=head, stages={}, blocks={},
                     rule=_parse_rule(top["stages"], at), content_hash=mapping_hash(data),
                     corners=_parse_corners(top, at), data=dict(data))
    st = _mapping(top.get("stages"), "stages", STAGE_KEYS, at)
    for key in ("count", "depth", "width", "branch"):
        if key not in st:
            raise at.fail(f"stages.{key}", "missing")
    stages = _parse_stages(st, at)
    blocks = _parse_blocks(st, stages, at)
    ties = _parse_ties(top, at)
    return Space(name=str(name), description=description, source=source, resolution=numbers["resolution"],
                 in_channels=numbers["channels"], num_classes=numbers["classes"], flops=bands["flops"],
                 params=bands["params"], stem=stem, head=head, stages=stages, blocks=blocks, ties=dict(ties),
                 content_hash=mapping_hash(data), corners=_parse_corners(top, at), data=dict(data))


def _parse_input(top: dict, at: _Where) -> tuple[dict[str, int], dict[str, Any]]:
    """The input's resolution, channels and classes, and the FLOPs and params bands."""
    inp = _mapping(top.get("input"), "input", ("resolution", "channels", "classes"), at)
    numbers = {}
    for key, default in (("resolution", 32), ("channels", 3), ("classes", 10)):
        value = inp.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise at.fail(f"input.{key}", f"{value!r} must be an integer >= 1")
        numbers[key] = value
    cons = _mapping(top.get("constraints"), "constraints", ("flops", "params"), at)
    bands = {}
    for key in ("flops", "params"):
        try:
            bands[key] = parse_band(cons[key], key) if cons.get(key) is not None else None
        except SpaceError as e:
            raise at.fail(f"constraints.{key}", str(e).split(": ", 1)[-1]) from None
    return numbers, bands


def _parse_stem_head(top: dict, at: _Where) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stem's and the head's distributions."""
    stem_node = _mapping(top.get("stem"), "stem", ("kind", "width", "mid_width"), at)
    stem = {k: _typed(_dist(stem_node.get(k, _field_default(Stem, k)), f"stem.{k}", at), _field_default(Stem, k),
                      f"stem.{k}", at) for k in ("kind", "width")}
    stem["mid_width"] = _typed(_dist(stem_node.get("mid_width", 64), "stem.mid_width", at), 64, "stem.mid_width", at)
    for kind in stem["kind"].values:
        if kind not in ("imagenet", "cifar", "simple", "alexnet", "googlenet", "inception_resnet_v1", "none"):
            raise at.fail("stem.kind", f"unknown stem {kind!r}")
    head_node = _mapping(top.get("head"), "head", tuple(f.name for f in dataclasses.fields(Head)), at)
    head = {k: _dist(v, f"head.{k}", at) for k, v in head_node.items()}
    return stem, head


def _parse_stages(st: dict, at: _Where) -> dict[str, Any]:
    """The per-stage distributions: count, depth, width, branch, stride, pool."""
    stages = {k: _dist(st[k], f"stages.{k}", at) for k in ("count", "depth", "width", "branch")}
    for k in ("stride", "pool"):
        stages[k] = _dist(st.get(k, 1 if k == "stride" else None), f"stages.{k}", at, per_stage=True)
    for key in ("count", "depth", "width"):
        if stages[key].kind in ("float", "log_float"):
            raise at.fail(f"stages.{key}", "must be an integer distribution")
        values = stages[key].values
        if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            bad = next(v for v in values if isinstance(v, bool) or not isinstance(v, int))
            raise at.fail(f"stages.{key}", f"{bad!r} is not a whole number")
    if any(not isinstance(v, str) for v in stages["branch"].values):
        raise at.fail("stages.branch", f"expected branch names, got {list(stages['branch'].values)!r}")
    if stages["count"].low < 1 or stages["depth"].low < 0:
        raise at.fail("stages.count" if stages["count"].low < 1 else "stages.depth", "must be >= 1 (count) / >= 0 (depth)")
    if stages["width"].support() is not None and not all(isinstance(v, int) and v >= 1 for v in stages["width"].support()):
        raise at.fail("stages.width", "widths must be integers >= 1")
    return stages


def _parse_blocks(st: dict, stages: dict[str, Any], at: _Where) -> dict[str, dict[str, Any]]:
    """Each branch's block fields."""
    blocks: dict[str, dict[str, Any]] = {}
    for branch in stages["branch"].values:
        if branch not in BLOCK_FIELDS:
            raise at.fail("stages.branch", f"unknown branch {branch!r} (choose from {', '.join(BLOCK_FIELDS)})")
        known = BLOCK_FIELDS[branch] + (("pool",) if branch == "inception" else ("stride", "pool"))
        node = _mapping(st.get(branch), f"stages.{branch}", known, at)
        cls = _BLOCK_CLASS[branch]
        entry = {}
        for f in BLOCK_FIELDS[branch]:
            if branch == "multibranch" and f == "paths":
                entry[f] = _paths_dist(node.get(f), f"stages.{branch}.{f}", at)
                continue
            default = 0.25 if f == "bottleneck_ratio" and branch == "aggregated" else (
                _field_default(cls, f) if f in {x.name for x in dataclasses.fields(cls)} else None)
            # a multibranch stage may place its fields per stage: a net's module sequence (Inception-ResNet's A, Reduction-A, ...)
            dist = _dist(node.get(f, default), f"stages.{branch}.{f}", at, per_stage=branch == "multibranch")
            if isinstance(dist, PerStage):
                _typed(Dist("choice", dist.values), default, f"stages.{branch}.{f}", at)
                entry[f] = dist
            else:
                entry[f] = _typed(dist, default, f"stages.{branch}.{f}", at)
        for f in ("stride", "pool"):
            if f in node:
                entry[f] = _dist(node[f], f"stages.{branch}.{f}", at, per_stage=True)
        if branch == "aggregated" and entry["cardinality"].low < 1:
            raise at.fail("stages.aggregated.cardinality", "must be >= 1")
        blocks[branch] = entry
    for branch in st:
        if branch in BRANCHES and branch not in blocks and st[branch] is not None:  # null: a corner drops the section
            raise at.fail(f"stages.{branch}", f"{branch} is not among stages.branch")
    return blocks


def _parse_ties(top: dict, at: _Where) -> dict:
    """The ties across stages."""
    ties = _mapping(top.get("ties"), "ties", tuple(TIE_KINDS) + tuple(
        sorted({f for fs in BLOCK_FIELDS.values() for f in fs} - set(INCEPTION_WIDTHS))), at)
    for key, value in ties.items():
        allowed = TIE_KINDS.get(key, ("same",))
        if value not in allowed:
            raise at.fail(f"ties.{key}", f"{value!r} is not one of {', '.join(allowed)}")
    return ties


def _parse_corners(top: dict, at: _Where) -> dict:
    corners = _mapping(top.get("corners"), "corners", tuple(top.get("corners") or ()), at)
    for cname, overrides in corners.items():
        if not isinstance(overrides, dict):
            raise at.fail(f"corners.{cname}", "expected a mapping of space keys to lay over the space")
        bad = [k for k in overrides if k not in _TOP_KEYS or k in ("name", "corners", "input")]
        if bad:
            raise at.fail(f"corners.{cname}.{bad[0]}", "not a key a corner may change")
    return corners


def _parse_rule(node: dict, at: _Where) -> RegNetRule:
    """The `stages` mapping of a rule space: `rule: regnet` and the distributions of the rule's parameters."""
    node = _mapping(node, "stages", RULE_KEYS, at)
    if node["rule"] not in RULES:
        raise at.fail("stages.rule", f"unknown rule {node['rule']!r} (choose from {', '.join(RULES)})")
    for key in ("count", "depth", "w_0", "w_a", "w_m", "group_width"):
        if key not in node:
            raise at.fail(f"stages.{key}", "missing (rule regnet)")
    dists = {k: _dist(node[k] if k in node else 1.0, f"stages.{k}", at)  # bottleneck_ratio: RegNetX's 1
             for k in ("count", "depth", "w_0", "w_a", "w_m", "group_width", "bottleneck_ratio")}
    for key in ("count", "depth", "w_0", "group_width"):  # whole numbers >= 1
        dist = dists[key]
        whole = dist.kind not in ("float", "log_float") and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 for v in dist.values)
        if not whole:
            raise at.fail(f"stages.{key}", f"{list(dist.values)!r}: must be whole numbers")
        if dist.low < 1:
            raise at.fail(f"stages.{key}", f"must be >= 1, got {dist.low}")
    for key in ("w_a", "w_m", "bottleneck_ratio"):
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in dists[key].values):
            raise at.fail(f"stages.{key}", f"{list(dists[key].values)!r}: must be numbers")
    if dists["w_a"].low < 0:
        raise at.fail("stages.w_a", f"must be >= 0, got {dists['w_a'].low}")
    if dists["w_m"].low <= 1:
        raise at.fail("stages.w_m", f"must be > 1, got {dists['w_m'].low}")
    if dists["bottleneck_ratio"].low <= 0:
        raise at.fail("stages.bottleneck_ratio", f"must be > 0, got {dists['bottleneck_ratio'].low}")
    rule = RegNetRule(**dists, stride=_dist(node.get("stride", 2), "stages.stride", at, per_stage=True))
    if isinstance(rule.stride, Dist) and rule.stride.kind != "fixed":
        raise at.fail("stages.stride", "a value or per_stage (rule regnet: strides are not drawn)")
    strides = rule.stride.values
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in strides):
        raise at.fail("stages.stride", f"{list(strides)!r}: strides must be whole numbers >= 1")
    if not rule.w_0_values():
        raise at.fail("stages.w_0", f"{rule.w_0.describe()} holds no multiple of {QUANTUM}")
    return rule


def overlay(base: Any, top: Any) -> Any:
    """`top` laid over `base`: mappings merge key by key (recursively), anything else replaces."""
    if isinstance(base, dict) and isinstance(top, dict) and not (len(top) == 1 and next(iter(top)) in DIST_KINDS):
        out = dict(base)
        for key, value in top.items():
            out[key] = overlay(base.get(key), value) if key in base else value
        return out
    return top


def mapping_hash(data: Any) -> str:
    """sha256 (first 12 hex digits) of the file's mapping as canonical JSON: comments and layout do not count."""
    import hashlib
    import json

    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_space(name_or_path: str | Path) -> Space:
    """A space by name (see `known_spaces`: $NASX_SPACES_PATH, then the shipped ones) or a space file by path."""
    path: Traversable = Path(name_or_path)
    if not path.suffix and not path.exists():
        known = known_spaces()
        if str(name_or_path) not in known:
            where = f"{SPACES_PATH_VAR} folders and the shipped spaces" if _search_path() else "shipped"
            raise SpaceError(f"{name_or_path!r}: no such space ({where}: {', '.join(known) or 'none found'})")
        path = known[str(name_or_path)]
    source = str(path)
    text = read_text(path)  # an unreadable or binary file: SpecError naming it
    try:
        data = parse_yaml(text)
    except SpecError as e:
        raise SpaceError(f"{source}: {e}") from None
    try:
        space = parse_space(data, source)
        for name in space.corners:
            space.corner(name)  # a corner that cannot be read is an error of the file, found now
        return space
    except (TypeError, AttributeError, KeyError) as e:  # a value of a type no check above foresaw
        raise SpaceError(f"{source}: malformed space file ({type(e).__name__}: {e})") from None
    except RecursionError:
        raise SpaceError(f"{source}: {TOO_DEEP}") from None


def _search_path() -> list[Path]:
    """The folders named by $NASX_SPACES_PATH, in order (empty entries skipped)."""
    return [Path(p).expanduser() for p in os.environ.get(SPACES_PATH_VAR, "").split(os.pathsep) if p.strip()]


def _yaml_files(folder: Traversable) -> dict[str, Traversable]:
    """name -> file of each *.yaml in a folder (a path or package data); none where the folder is missing."""
    if not folder.is_dir():
        return {}
    return {p.name[:-5]: p for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".yaml") and p.is_file()}


def shipped_spaces() -> list[str]:
    """Names of the spaces shipped inside the package (nasx/spaces/)."""
    return sorted(_yaml_files(SPACES_DIR))


def known_spaces() -> dict[str, Traversable]:
    """Every space a name reaches, name -> file, sorted by name: the $NASX_SPACES_PATH folders first (the first
    folder holding a name wins, so a team's file can stand in for a shipped one), then the shipped spaces."""
    found: dict[str, Traversable] = {}
    for folder in [*_search_path(), SPACES_DIR]:
        for name, path in _yaml_files(folder).items():
            found.setdefault(name, path)
    return dict(sorted(found.items()))
