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
several seeds as a fixed, resumable study; `write_ablation_report` reads the stored study back into a
table (CSV), a plot (PNG, SVG) and a self-contained index.html. FLOPs follow fvcore's convention
(`nasx.complexity`).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from .net.complexity import Cx, complexity, conv2d_cx
from .net.spec import AggregatedBlock, InceptionBlock, NetSpec, ResidualBlock, SpecError, Stage, Stem

__all__ = ["AXES", "AblationError", "Setting", "Plan", "plan", "settings", "default_template", "resolve_template",
           "eq4_params", "run_ablation", "ablation_table", "write_ablation_report", "format_plan",
           "PAPER_TABLE3", "TABLE2_CARDINALITIES"]

AXES = ("cardinality", "width", "depth", "bottleneck-ratio", "scale")
TOLERANCE = 0.05  # matched complexity: every setting within +-5% of its target FLOPs

# Xie et al. 2017, Table 2: the cardinalities compared at ResNeXt-50's complexity (group widths are solved)
TABLE2_CARDINALITIES = (1, 2, 4, 8, 32)
# Xie et al. 2017, Table 3: ImageNet-1K top-1 error (%) of ResNeXt-50 at (cardinality, group width);
# context only, never a measured number
PAPER_TABLE3 = {(1, 64): 23.9, (2, 40): 23.0, (4, 24): 22.6, (8, 14): 22.3, (32, 4): 22.2}
DEFAULT_VALUES = {
    "cardinality": TABLE2_CARDINALITIES,
    "depth": (0.5, 1.0, 1.5, 2.0),  # multipliers of the template's per-stage depths
    "width": (0.5, 0.71, 1.0, 1.41, 2.0),  # nominal multipliers of the stage widths
    "bottleneck-ratio": (0.25, 0.5, 1.0),  # w_b / width
}


class AblationError(SpecError):
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


def resolve_template(space: str = "resnext", base: Optional[str | NetSpec] = None) -> tuple[NetSpec, str]:
    """The template spec and a short label for names: a zoo name, a spec file's stem, or `<space>29`."""
    from .net.zoo import resolve

    if base is None:
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


def run_ablation(p: Plan, *, name: str, seeds: int = 2, config=None, progress=None,
                 train_fn: Optional[Callable] = None):
    """Train every setting with `seeds` seeds (0..seeds-1) as the fixed study `ablation-<name>` (resumable:
    a re-run trains only the missing runs); every run also records its test accuracy. Returns the RunSummary."""
    from .study import Candidate, StudyConfig, run_study

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


# ---------------------------------------------------------------------------------------------
# Reading back and reporting


def _trial_rows(trials) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    rows = []
    for t in trials:
        a = t.user_attrs
        if "tag_setting" not in a:
            continue
        rows.append({"setting": a["tag_setting"], "order": a.get("tag_order", 0), "state": t.state.name,
                     "complete": t.state == TrialState.COMPLETE, "seed": a.get("seed"),
                     "cardinality": a.get("tag_cardinality"), "group_width": a.get("tag_group_width"),
                     "depths": a.get("tag_depths"), "widths": a.get("tag_widths"), "value": a.get("tag_value"),
                     "params": a.get("params"), "flops": a.get("flops"), "deviation": a.get("tag_deviation"),
                     "is_base": a.get("tag_is_base", False), "val_acc": a.get("val_acc"),
                     "test_acc": a.get("test_acc"), "images_per_s": a.get("images_per_s"),
                     "vary": a.get("tag_vary"), "device": a.get("device"), "dataset": a.get("dataset"),
                     "budget": a.get("budget"), "template": a.get("tag_template")})
    return rows


def ablation_table(trials):
    """One row per setting: its structure, params, FLOPs (as trained), deviation, mean images/s and
    mean / sample std (ddof=1; 0 with one seed) of validation and test accuracy over its complete seeds."""
    import pandas as pd

    rows = [r for r in _trial_rows(trials)]
    columns = ["setting", "cardinality", "group_width", "depths", "widths", "value", "params", "flops",
               "flops_deviation", "images_per_s", "seeds", "val_acc_mean", "val_acc_std", "test_acc_mean",
               "test_acc_std", "val_err_mean", "test_err_mean", "is_base"]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    out = []
    for setting, group in sorted(df.groupby("setting", sort=False), key=lambda kv: kv[1]["order"].iloc[0]):
        first = group.iloc[0]
        done = group[group["complete"]]

        def stat(col: str, fn: str) -> float:
            values = done[col].dropna().astype(float)
            if values.empty:
                return float("nan")
            if fn == "std":
                return float(values.std(ddof=1)) if len(values) > 1 else 0.0
            return float(values.mean())

        out.append({"setting": setting, "cardinality": first["cardinality"], "group_width": first["group_width"],
                    "depths": "-".join(map(str, first["depths"] or [])),
                    "widths": "-".join(map(str, first["widths"] or [])), "value": first["value"],
                    "params": first["params"], "flops": first["flops"], "flops_deviation": first["deviation"],
                    "images_per_s": stat("images_per_s", "mean"), "seeds": int(len(done)),
                    "val_acc_mean": stat("val_acc", "mean"), "val_acc_std": stat("val_acc", "std"),
                    "test_acc_mean": stat("test_acc", "mean"), "test_acc_std": stat("test_acc", "std"),
                    "is_base": bool(first["is_base"])})
    table = pd.DataFrame(out)
    table["val_err_mean"] = 100 * (1 - table["val_acc_mean"])
    table["test_err_mean"] = 100 * (1 - table["test_acc_mean"])
    return table[columns]


def _plot(table, vary: str, title: str, out_dir: Path, chance: Optional[float] = None) -> bytes:
    """Error (%) against the axis, mean over seeds with +-1 std bars; writes ablation.png/.svg, returns the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    numeric = vary in ("cardinality", "width", "depth", "bottleneck-ratio")
    if vary == "cardinality":
        x = table["cardinality"].astype(float).to_numpy()
    elif numeric:
        x = table["value"].astype(float).to_numpy()
    else:
        x = list(range(len(table)))
    for key, label, marker, shift in (("val", "validation", "o", -0.03), ("test", "test", "s", 0.03)):
        mean = 100 * (1 - table[f"{key}_acc_mean"].astype(float))
        std = 100 * table[f"{key}_acc_std"].astype(float)
        xs = [v * (1 + shift) for v in x] if numeric else [v + shift * 3 for v in x]
        ax.errorbar(xs, mean, yerr=std, marker=marker, capsize=4, label=f"{label} error (mean \u00b1 std over seeds)")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance ({chance:.0f}% error)")
    names = list(table["setting"])
    if vary == "cardinality":
        ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_xlabel("cardinality (setting C x group width d, matched complexity)")
    elif numeric:
        axis_label = {"width": "stage-width multiplier", "depth": "depth multiplier",
                      "bottleneck-ratio": "bottleneck ratio w_b / width"}[vary]
        ax.set_xscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in x])
        ax.set_xlabel(f"{axis_label} (matched complexity)")
    else:
        ax.set_xticks(x)
        ax.set_xticklabels(names)
        ax.set_xlabel("setting")
    ax.minorticks_off()
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "ablation.svg")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = buf.getvalue()
    (out_dir / "ablation.png").write_bytes(png)
    return png


def _paper_context(table) -> list[tuple[str, float]]:
    """Table 3 rows whose (cardinality, group width) the ablation contains."""
    rows = []
    for _, r in table.iterrows():
        key = (r["cardinality"], r["group_width"])
        if key in PAPER_TABLE3:
            rows.append((r["setting"], PAPER_TABLE3[key]))
    return rows


def write_ablation_report(name: str, storage: Optional[str] = None, out: Optional[str | Path] = None,
                          studies_dir: str = "studies", command: Optional[str] = None) -> Path:
    """Read the stored study `ablation-<name>` and write ablation.csv, ablation.png/.svg and index.html
    into `out` (default reports/ablation-<name>/); returns that folder."""
    import optuna

    from .study import open_storage

    study_name = f"ablation-{name}"
    url = storage or str(Path(studies_dir) / f"{study_name}.journal")
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    except KeyError:
        raise AblationError(f"no study {study_name!r} in {url}; run the ablation first") from None
    trials = study.get_trials(deepcopy=False)
    rows = _trial_rows(trials)
    table = ablation_table(trials)
    if table.empty:
        raise AblationError(f"study {study_name!r} holds no ablation runs")
    out_dir = Path(out) if out is not None else Path("reports") / study_name
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "ablation.csv", index=False, float_format="%.6g")
    vary = rows[0]["vary"] or "cardinality"
    meta = {k: rows[0].get(k) for k in ("dataset", "device", "budget", "template")}
    budget = meta["budget"] or {}
    title = (f"{study_name}\n{meta['dataset']}, {budget.get('epochs', '?')} epoch(s) on "
             f"{budget.get('fraction', '?')} of the training split, {int(table['seeds'].max())} seed(s) a setting")
    classes = next((t.user_attrs["spec"].get("num_classes") for t in trials
                    if isinstance(t.user_attrs.get("spec"), dict)), None)
    png = _plot(table, vary, title, out_dir, chance=None if not classes else 100 * (1 - 1 / classes))
    context = _paper_context(table) if vary == "cardinality" else []
    if context:
        import csv

        with open(out_dir / "paper-context.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["setting", "paper_imagenet_resnext50_top1_err_pct (Xie et al. 2017, Table 3; not measured here)"])
            writer.writerows(context)
    (out_dir / "index.html").write_text(_html(study_name, table, meta, png, context, command,
                                              failed=sum(1 for r in rows if not r["complete"])))
    return out_dir


def _html(study_name: str, table, meta: dict, png: bytes, context, command: Optional[str], failed: int) -> str:
    e = html.escape

    def pct(mean, std) -> str:
        return "n/a" if mean != mean else f"{100 * mean:.2f} \u00b1 {100 * std:.2f}"

    head = ("<tr><th>setting</th><th>cardinality</th><th>group width</th><th>depths</th><th>widths</th>"
            "<th>params</th><th>FLOPs</th><th>FLOPs vs target</th><th>images/s (measured)</th><th>seeds</th>"
            "<th>val acc % (mean \u00b1 std)</th><th>test acc % (mean \u00b1 std)</th></tr>")
    body = []
    for _, r in table.iterrows():
        body.append(
            f"<tr><td>{e(str(r['setting']))}{' (template)' if r['is_base'] else ''}</td><td>{e(str(r['cardinality']))}</td>"
            f"<td>{e(str(r['group_width']))}</td><td>{e(r['depths'])}</td><td>{e(r['widths'])}</td>"
            f"<td>{int(r['params']):,}</td><td>{int(r['flops']):,}</td><td>{r['flops_deviation']:+.1%}</td>"
            f"<td>{r['images_per_s']:.0f}</td><td>{r['seeds']}</td><td>{pct(r['val_acc_mean'], r['val_acc_std'])}</td>"
            f"<td>{pct(r['test_acc_mean'], r['test_acc_std'])}</td></tr>")
    ctx = ""
    if context:
        ctx_rows = "".join(f"<tr><td>{e(s)}</td><td>{v:.1f}</td></tr>" for s, v in context)
        ctx = ("<h2>Context: the paper's ImageNet numbers (not measured here)</h2>"
               "<p>Xie et al. 2017, Table 3: ImageNet-1K top-1 error of ResNeXt-50 (224x224, full training) at the "
               "same (cardinality, group width). A different dataset, net and budget: read it as the trend the paper "
               "found, not as a number to compare the columns above with.</p>"
               f"<table><tr><th>setting</th><th>paper ImageNet top-1 error %</th></tr>{ctx_rows}</table>")
    budget = meta.get("budget") or {}
    cmd = f"<p>Command: <code>{e(command)}</code></p>" if command else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(study_name)}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .5em;text-align:right}}
th{{background:#f4f4f4}}td:first-child{{text-align:left}}</style></head><body>
<h1>{e(study_name)}</h1>
<p>Template {e(str(meta.get('template')))}; dataset {e(str(meta.get('dataset')))}; budget {e(str(budget.get('epochs')))}
epoch(s) on {e(str(budget.get('fraction')))} of the training split; device {e(str(meta.get('device')))};
written {time.strftime('%Y-%m-%d %H:%M')}. FLOPs: fvcore's convention (multiply-adds), as trained.
Accuracies: mean \u00b1 sample std over complete seeds{f'; {failed} run(s) did not complete' if failed else ''}.</p>
{cmd}
<table>{head}{''.join(body)}</table>
<img alt="error vs setting" src="data:image/png;base64,{base64.b64encode(png).decode()}">
{ctx}
</body></html>
"""
