"""Matched-complexity ablations (Xie et al. 2017, Tables 2-4): settings from a template, seeded runs, a report.

An ablation holds one complexity fixed and trades one design knob against another:

    cardinality       set the cardinality C, solve the group width d that keeps the first stage's block
                      parameters closest to the template's (the paper's Eq. 4: C * (w*d + 3*3*d*d + d*w));
                      later stages keep the template's group-width ratios (torchvision doubles them)
    depth             set per-stage depths (template depths x value), solve the stage widths for the FLOPs
    width             set a nominal width multiplier m, take depths d_i / m^2, then solve the widths exactly
    bottleneck-ratio  set b = w_b / width, solve the stage widths for the FLOPs
    scale             at `factor` x the template's FLOPs: deeper, wider (bottleneck) or more cardinality
                      (Table 4), beside the 1x template

Settings are pure functions of the template (`plan`, `settings`); `run_ablation` trains every setting with
several seeds as a fixed, resumable study (its page is drawn by `nasx.report.ablation`). FLOPs follow
fvcore's convention (`nasx.complexity`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ..errors import NasxError
from ..net.complexity import Cx, complexity, conv2d_cx
from ..net.spec import AggregatedBlock, InceptionBlock, NetSpec, ResidualBlock, SpecError, Stage, Stem

__all__ = ["AXES", "AblationError", "Setting", "Plan", "plan", "settings", "default_template", "resolve_template",
           "eq4_params", "run_ablation", "format_plan",
           "PAPER_TABLE3", "TABLE2_CARDINALITIES"]

AXES = ("cardinality", "width", "depth", "bottleneck-ratio", "scale")
TOLERANCE = 0.05  # matched complexity: every setting within +-5% of its target FLOPs

# Xie et al. 2017, Table 2: the cardinalities compared at ResNeXt-50's complexity (group widths are solved)
TABLE2_CARDINALITIES = (1, 2, 4, 8, 32)
# Xie et al. 2017, Table 3: ImageNet-1K top-1 error (%) of ResNeXt-50 at (cardinality, group width);
# context only, never a measured number
PAPER_TABLE3 = {(1, 64): 23.9, (2, 40): 23.0, (4, 24): 22.6, (8, 14): 22.3, (32, 4): 22.2}
CPU_CARDINALITIES = (1, 2, 4, 8, 16)  # the CPU template's cardinality axis (its own cardinality is 8)
DEFAULT_VALUES = {
    "cardinality": TABLE2_CARDINALITIES,
    "depth": (0.5, 1.0, 1.5, 2.0),  # multipliers of the template's per-stage depths
    "width": (0.5, 0.71, 1.0, 1.41, 2.0),  # nominal multipliers of the stage widths
    "bottleneck-ratio": (0.25, 0.5, 1.0),  # w_b / width
}


class AblationError(NasxError, ValueError):
    """An ablation that cannot be set up (template, axis, values, tolerance); one line, names the cause."""


@dataclass(frozen=True)
class Setting:
    """One net of an ablation and its complexity against the target."""

    name: str  # e.g. 32x4d, d=(2,2,2) w x1.41, deeper
    spec: NetSpec
    cardinality: Optional[int]  # first stage's (None for blocks without one)
    group_width: Optional[int]  # first stage's
    flops: int
    params: int
    deviation: float  # flops / target_flops - 1
    target_flops: int
    value: Any = None  # the axis value: cardinality, width multiplier, depth multiplier, ratio, scale label
    is_base: bool = False  # the template itself

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.spec.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.spec.stages)

    def tags(self, order: int) -> dict[str, Any]:
        """What a trial stores about its setting (as tag_<key>), enough for the report to need nothing else."""
        return {"setting": self.name, "order": order, "cardinality": self.cardinality,
                "group_width": self.group_width, "value": self.value, "deviation": self.deviation,
                "target_flops": self.target_flops, "is_base": self.is_base,
                "depths": list(self.depths), "widths": list(self.widths)}


@dataclass(frozen=True)
class Plan:
    """The settings of one ablation, and the ones left out (infeasible or outside the tolerance)."""

    base: NetSpec
    vary: str
    factor: float
    target_flops: int
    settings: list[Setting]
    skipped: list[str] = field(default_factory=list)
    template: str = ""  # how the template was named (zoo name, file, or the space's default)


# ---------------------------------------------------------------------------------------------
# Templates


def default_template(space: str = "resnext") -> NetSpec:
    """The template of `--space resnext` without `--base`: a ResNeXt-29-style CIFAR net, 32x4d.

    Xie et al.'s CIFAR layout (Sec. 5.3: 3x3 conv 64, three stages of 3 bottleneck blocks to 256/512/1024,
    the group width doubling with the stage), with ResNeXt-50's first-stage block (cardinality 32, group
    width 4, w_b = 128): 0.77 GFLOPs instead of ResNeXt-29 8x64d's 5.4, and the same Eq. 4 budget as
    ResNeXt-50, so the cardinality axis gives Table 2's settings on CIFAR.
    """
    name = Path(space).stem
    if name != "resnext":
        raise AblationError(f"--space {space}: no default template for this space; pass --base (a zoo name or spec file)")
    stages = tuple(
        Stage(depth=3, width=w, block=AggregatedBlock(cardinality=32, group_width=4 * 2**i), stride=1 if i == 0 else 2)
        for i, w in enumerate((256, 512, 1024))
    )
    return NetSpec(stem=Stem("cifar", 64), stages=stages, num_classes=10, resolution=32)


def cpu_template(space: str = "resnext") -> NetSpec:
    """The template of `--space resnext` without `--base` on a CPU: ResNeXt-11 8x2d at 32 px, 21,494,912 FLOPs.

    The CIFAR layout of `default_template` shrunk to what 2 cores train in about a minute per run (one
    pass over half of CIFAR-10): 3x3 conv 32, three stages of one bottleneck block to 80/160/320,
    cardinality 8 with group width 2/4/8 (w_b = 16 in the first stage), so that every setting of the
    cardinality axis 1, 2, 4, 8, 16 solves Eq. 4 within +-5% of its FLOPs (1x11d ... 16x1d).
    """
    default_template(space)  # the same spaces have a template
    stages = tuple(
        Stage(depth=1, width=w, block=AggregatedBlock(cardinality=8, group_width=2 * 2**i), stride=1 if i == 0 else 2)
        for i, w in enumerate((80, 160, 320))
    )
    return NetSpec(stem=Stem("cifar", 32), stages=stages, num_classes=10, resolution=32)


def resolve_template(space: str = "resnext", base: Optional[str | NetSpec] = None,
                     cpu: bool = False) -> tuple[NetSpec, str]:
    """The template spec and a short label for names: a zoo name, a spec file's stem, `<space>29`, or on a
    CPU without `base`, `<space>11-cpu` (see `cpu_template`)."""
    from ..net.zoo import resolve

    if base is None:
        if cpu:
            return cpu_template(space), f"{Path(space).stem}11-cpu"
        return default_template(space), f"{Path(space).stem}29"
    if isinstance(base, NetSpec):
        return base, base.id
    return resolve(base), Path(base).stem


# ---------------------------------------------------------------------------------------------
# Counting helpers


def eq4_params(width: int, cardinality: int, group_width: int) -> int:
    """Weights of an aggregated block's transform at w_in = w_out = width: 1x1, grouped 3x3, 1x1 (Eq. 4)."""
    cx = Cx(1)
    w_b = cardinality * group_width
    conv2d_cx(cx, width, w_b, 1)
    conv2d_cx(cx, w_b, w_b, 3, groups=cardinality)
    conv2d_cx(cx, w_b, width, 1)
    return cx.params


def _bottleneck_view(spec: NetSpec, axis: str) -> list[tuple[int, int]]:
    """(cardinality, group width) per stage of a template of bottleneck blocks (a ResNet bottleneck is 1 x w_b)."""
    view = []
    for i, stage in enumerate(spec.stages, start=1):
        block = stage.block
        if isinstance(block, AggregatedBlock):
            view.append((block.cardinality, block.group_width))
        elif isinstance(block, ResidualBlock) and block.kind == "bottleneck":
            view.append((1, NetSpec.bottleneck_width(stage)))
        else:
            raise AblationError(f"--vary {axis}: needs bottleneck blocks (residual bottleneck or aggregated); "
                                f"stage {i} is {block.branch}" + (f" {block.kind}" if isinstance(block, ResidualBlock) else ""))
    return view


def _shortcut(block) -> str:
    return getattr(block, "shortcut", "projection")


def _aggregated(spec: NetSpec, cardinality: int, group_widths: Sequence[int], widths: Optional[Sequence[int]] = None,
                depths: Optional[Sequence[int]] = None) -> NetSpec:
    """The template with every stage an aggregated block of `cardinality` x group_widths[i]."""
    stages = []
    for i, stage in enumerate(spec.stages):
        block = AggregatedBlock(cardinality=cardinality, group_width=int(group_widths[i]), shortcut=_shortcut(stage.block))
        stages.append(dataclasses.replace(stage, block=block,
                                          width=stage.width if widths is None else int(widths[i]),
                                          depth=stage.depth if depths is None else int(depths[i])))
    return spec.replace(stages=tuple(stages))


def _reshape(spec: NetSpec, widths: Sequence[int], depths: Optional[Sequence[int]] = None,
             ratio: Optional[float] = None) -> NetSpec:
    """The template with new stage widths (and depths): group widths follow the width (or w_b = ratio x width)."""
    stages = []
    for i, stage in enumerate(spec.stages):
        w, block = int(widths[i]), stage.block
        if isinstance(block, AggregatedBlock):
            w_b = w * ratio if ratio is not None else block.w_b * w / stage.width
            block = dataclasses.replace(block, group_width=max(1, round(w_b / block.cardinality)))
        elif isinstance(block, ResidualBlock) and ratio is not None:
            block = dataclasses.replace(block, bottleneck_ratio=float(ratio))
        elif isinstance(block, InceptionBlock):
            raise AblationError(f"stage {i + 1}: inception stages have no single width to scale")
        stages.append(dataclasses.replace(stage, width=w, block=block,
                                          depth=stage.depth if depths is None else int(depths[i])))
    return spec.replace(stages=tuple(stages))


def _quantum(stage: Stage) -> int:
    c = stage.block.cardinality if isinstance(stage.block, AggregatedBlock) else 1
    return c * 4 // math.gcd(c, 4)  # widths stay multiples of 4 and of the cardinality


def _width_candidates(spec: NetSpec, low: float, high: float, steps: int = 1500) -> list[tuple[int, ...]]:
    """Distinct stage-width vectors w_i * m (rounded to each stage's quantum) for m in [low, high]."""
    seen: dict[tuple[int, ...], None] = {}
    for k in range(steps + 1):
        m = low * (high / low) ** (k / steps)
        widths = tuple(max(_quantum(s), round(s.width * m / _quantum(s)) * _quantum(s)) for s in spec.stages)
        seen.setdefault(widths, None)
    return list(seen)


def _closest(candidates: Iterable[NetSpec], target: int) -> Optional[tuple[NetSpec, int, int]]:
    """The valid candidate whose FLOPs lie closest to `target`: (spec, flops, params)."""
    best = None
    for make in candidates:
        try:
            spec = make() if callable(make) else make
            cx = complexity(spec)
        except SpecError:
            continue
        if best is None or abs(cx.flops - target) < abs(best[1] - target):
            best = (spec, cx.flops, cx.params)
    return best


def _solve_widths(spec: NetSpec, target: int, depths=None, ratio=None, low=0.2, high=5.0):
    return _closest((lambda w=w: _reshape(spec, w, depths, ratio) for w in _width_candidates(spec, low, high)), target)


def _with_depths(spec: NetSpec, depths: Sequence[int]) -> NetSpec:
    return spec.replace(stages=tuple(dataclasses.replace(s, depth=int(d)) for s, d in zip(spec.stages, depths)))


def _first(spec: NetSpec) -> tuple[Optional[int], Optional[int]]:
    block = spec.stages[0].block if spec.stages else None
    if isinstance(block, AggregatedBlock):
        return block.cardinality, block.group_width
    if isinstance(block, ResidualBlock) and block.kind == "bottleneck":
        return 1, NetSpec.bottleneck_width(spec.stages[0])
    return None, None


def _fmt(x: float) -> str:
    return f"{x:.3g}"


# ---------------------------------------------------------------------------------------------
# Setting generators


def _cardinality(base: NetSpec, values: Sequence[int]):
    """Table 2: at each cardinality the group width whose Eq. 4 block parameters are closest to the template's."""
    view = _bottleneck_view(base, "cardinality")
    c0, g0 = view[0]
    w1 = base.stages[0].width
    budget = eq4_params(w1, c0, g0)
    values = sorted(set(int(v) for v in values) | {c0})
    for c in values:
        if c < 1:
            yield None, f"cardinality {c}: must be >= 1"
            continue
        # Eq. 4 grows with d: scan up to the first group width past the budget
        best, d = None, 1
        while True:
            p = eq4_params(w1, c, d)
            if best is None or abs(p - budget) < abs(best[1] - budget):
                best = (d, p)
            if p > budget:
                break
            d += 1
        gw = best[0]
        # later stages keep the template's group-width ratios (torchvision: x2 per stage at fixed cardinality)
        gws = [max(1, round(gw * g / g0)) for _, g in view]
        try:
            spec = _aggregated(base, c, gws)
        except SpecError as e:
            yield None, f"{c}x{gw}d: {e}"
            continue
        yield (f"{c}x{gw}d", spec, c, c == c0 and gw == g0), None


def _depth(base: NetSpec, values: Sequence[float], target: int):
    for k in values:
        depths = tuple(max(1, round(s.depth * k)) for s in base.stages)
        found = _solve_widths(base, target, depths=depths)
        if found is None:
            yield None, f"depth x{_fmt(k)}: no valid widths"
            continue
        spec = found[0]
        m = spec.stages[0].width / base.stages[0].width
        name = "d=(" + ",".join(map(str, depths)) + f") w x{m:.2f}"
        yield (name, spec, k, spec == base), None


def _width(base: NetSpec, values: Sequence[float], target: int):
    for m in values:
        depths = tuple(max(1, round(s.depth / (m * m))) for s in base.stages)
        found = _solve_widths(base, target, depths=depths, low=m / 2, high=m * 2)
        if found is None:
            yield None, f"width x{_fmt(m)}: no valid widths"
            continue
        spec = found[0]
        actual = spec.stages[0].width / base.stages[0].width
        name = f"w x{actual:.2f} d=(" + ",".join(map(str, depths)) + ")"
        yield (name, spec, round(actual, 3), spec == base), None


def _bottleneck_ratio(base: NetSpec, values: Sequence[float], target: int):
    _bottleneck_view(base, "bottleneck-ratio")
    for b in values:
        if b <= 0:
            yield None, f"bottleneck ratio {b}: must be > 0"
            continue
        found = _solve_widths(base, target, ratio=float(b))
        if found is None:
            yield None, f"b={_fmt(b)}: no valid widths"
            continue
        spec = found[0]
        m = spec.stages[0].width / base.stages[0].width
        yield (f"b={_fmt(b)} w x{m:.2f}", spec, float(b), False), None


def _scale(base: NetSpec, factor: float, target: int):
    """Table 4: the template (1x) and, at factor x its FLOPs, deeper / wider (bottleneck) / more cardinality."""
    view = _bottleneck_view(base, "scale")
    yield ("1x (template)", base, 1.0, True), None
    high = 4 * factor
    # depths d_i x k, each stage rounded down or up: balanced, and fine enough to meet the tolerance
    depth_vectors: dict[tuple[int, ...], None] = {}
    for step in range(401):
        k = 1 + step / 400 * (high - 1)
        roundings = [sorted({max(1, math.floor(s.depth * k)), max(1, math.ceil(s.depth * k))}) for s in base.stages]
        depth_vectors.update(dict.fromkeys(itertools.product(*roundings)))
    deeper = _closest((lambda d=d: _with_depths(base, d) for d in depth_vectors), target)
    if deeper is not None:
        yield ("deeper", deeper[0], "deeper", False), None
    c0, g0 = view[0]
    ratios = [g / g0 for _, g in view]
    wider = _closest((lambda g=g: _aggregated(base, c0, [max(1, round(g * r)) for r in ratios])
                      for g in range(g0 + 1, int(g0 * high) + 2)), target)
    if wider is not None:
        yield ("wider", wider[0], "wider", False), None
    more = _closest((lambda c=c: _aggregated(base, c, [g for _, g in view])
                     for c in range(c0 + 1, int(c0 * high) + 2)), target)
    if more is not None:
        yield ("cardinality", more[0], "cardinality", False), None
    else:
        yield None, "more cardinality: no cardinality divides every stage width"


def plan(base: NetSpec, vary: str, factor: float = 2.0, values: Optional[Sequence[float]] = None,
         tolerance: float = TOLERANCE, template: str = "") -> Plan:
    """The settings of an ablation of `base` along `vary` (see the module docstring).

    Settings outside `tolerance` of the target FLOPs, or impossible specs, are left out with a reason in
    `skipped` when `values` is the default; with explicit `values` they raise AblationError.
    """
    if vary not in AXES:
        raise AblationError(f"--vary {vary}: choose from {', '.join(AXES)}")
    if vary == "scale" and not factor > 0:
        raise AblationError(f"--factor {factor}: must be > 0")
    base_cx = complexity(base)
    explicit = values is not None
    vals = list(values) if explicit else list(DEFAULT_VALUES.get(vary, ()))
    if explicit and not vals:
        raise AblationError("--values: give at least one value")
    target = base_cx.flops
    if vary == "cardinality":
        produced = _cardinality(base, [int(v) for v in vals])
    elif vary == "depth":
        produced = _depth(base, vals, target)
    elif vary == "width":
        produced = _width(base, vals, target)
    elif vary == "bottleneck-ratio":
        produced = _bottleneck_ratio(base, vals, target)
    else:
        target = round(base_cx.flops * factor)
        produced = _scale(base, factor, target)
    out: list[Setting] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for made, reason in produced:
        if made is None:
            skipped.append(reason)
            continue
        name, spec, value, is_base = made
        cx = complexity(spec)
        own_target = base_cx.flops if (vary == "scale" and is_base) else target
        deviation = cx.flops / own_target - 1
        if spec.id in seen:
            continue
        if abs(deviation) > tolerance:
            skipped.append(f"{name}: FLOPs {deviation:+.1%} off the target, outside +-{tolerance:.0%}")
            continue
        seen.add(spec.id)
        c, g = _first(spec)
        out.append(Setting(name=name, spec=spec, cardinality=c, group_width=g, flops=cx.flops, params=cx.params,
                           deviation=deviation, target_flops=own_target, value=value,
                           is_base=bool(is_base) or spec == base))
    if explicit and skipped:
        raise AblationError(f"--vary {vary}: {skipped[0]}")
    if not out:
        raise AblationError(f"--vary {vary}: no setting within +-{tolerance:.0%} of the target"
                            + (f" ({skipped[0]})" if skipped else ""))
    return Plan(base=base, vary=vary, factor=factor, target_flops=target, settings=out, skipped=skipped,
                template=template)


def settings(base: NetSpec, vary: str, factor: float = 2.0, values: Optional[Sequence[float]] = None,
             tolerance: float = TOLERANCE) -> list[Setting]:
    """The settings of `plan(...)`, in order."""
    return plan(base, vary, factor, values, tolerance).settings


def format_plan(p: Plan) -> str:
    """The settings as a plain-text table (for --dry-run)."""
    what = f"{p.factor:g}x the template's FLOPs" if p.vary == "scale" else "the template's FLOPs"
    lines = [f"template {p.template or p.base.id}: {p.base.describe()}",
             f"--vary {p.vary}: target {p.target_flops:,} FLOPs ({what}), tolerance +-{TOLERANCE:.0%}",
             f"{'setting':<26} {'C':>4} {'gw':>5} {'depths':<14} {'widths':<22} {'params':>12} {'FLOPs':>15} {'dev':>7}"]
    for s in p.settings:
        lines.append(f"{s.name + (' *' if s.is_base else ''):<26} {s.cardinality or '-':>4} {s.group_width or '-':>5} "
                     f"{','.join(map(str, s.depths)):<14} {','.join(map(str, s.widths)):<22} {s.params:>12,} "
                     f"{s.flops:>15,} {s.deviation:>+7.1%}")
    lines.append("* the template itself")
    lines += [f"skipped: {reason}" for reason in p.skipped]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Running


def run_ablation(p: Plan, *, name: str, seeds: int = 3, config=None, progress=None,
                 train_fn: Optional[Callable] = None):
    """Train every setting with `seeds` seeds (0..seeds-1) as the fixed study `ablation-<name>` (resumable:
    a re-run trains only the missing runs); every run also records its test accuracy. Returns the RunSummary."""
    from ..study import Candidate, StudyConfig, run_study  # the study layer runs it; ablate only plans

    if seeds < 1:
        raise AblationError(f"--seeds {seeds}: must be >= 1")
    cfg = config or StudyConfig()
    study = f"ablation-{name}"
    cfg = dataclasses.replace(cfg, study=study, test=True)
    candidates = [Candidate(s.spec, seed=cfg.seed + k, tags={**s.tags(i), "vary": p.vary, "factor": p.factor,
                                                             "template": p.template or p.base.id,
                                                             "template_flops": complexity(p.base).flops})
                  for i, s in enumerate(p.settings) for k in range(seeds)]
    return run_study(cfg, progress=progress, train_fn=train_fn, candidates=candidates)
