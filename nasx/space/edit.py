"""Edit a space file's mapping: its restrictions (a tie, a range cut, a choice dropped) and their candidates.

A restriction is an edit of the file's own mapping, so a refined space is written, read and judged as a file like
any other (`nasx.experiments.refine` tests them on trained nets). Nothing here reads errors: candidates come from
the file's structure and the observed structures of the nets only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..net.spec import InceptionBlock, NetSpec
from .parse import BLOCK_FIELDS, INCEPTION_WIDTHS, Dist, Space, SpaceError, load_space, overlay, parse_space, drawn_width

__all__ = ["Restriction", "candidates", "dump", "flat", "flat_mapping", "with_value", "is_width"]


@dataclass(frozen=True)
class Restriction:
    """One candidate: an edit of the space's mapping, described in the file's own words."""

    kind: str  # "tie" | "cut" | "drop"
    key: str  # the edited key, e.g. "ties.width", "stages.depth", "stages.aggregated.bottleneck_ratio"
    text: str  # e.g. "ties.width: non_decreasing", "stages.depth: 1..3 -> 2..3", "stages.branch: drop residual"
    data: Mapping[str, Any] = field(repr=False, compare=False)  # the whole edited mapping


def dump(data: Mapping[str, Any]) -> str:
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


def flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a space mapping without its corners (a refined space is one flat space)."""
    if not isinstance(data, Mapping):
        raise SpaceError(f"a space mapping is needed, got {type(data).__name__}")
    return {k: copy.deepcopy(v) for k, v in data.items() if k != "corners"}


def flat_mapping(space: str | Path, corner: Optional[str] = None) -> tuple[dict[str, Any], Space]:
    """The mapping of a space file (a shipped name or a path) with the named corner laid over it and no corners
    left, and the Space it parses to (its content hash is the corner's, as a study of that corner stores it)."""
    loaded = load_space(space)
    data = flat(loaded.data)
    if corner not in (None, "none"):
        loaded.corner(corner)  # an unknown corner: SpaceError naming the file and its corners
        data = overlay(data, copy.deepcopy(loaded.corners[corner]))
    return data, parse_space(data, loaded.source if corner in (None, "none") else f"{loaded.source} (corner {corner})")


def with_value(data: Mapping[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    """A deep copy of the mapping with `value` at `path` (the mappings on the way made where missing)."""
    out = copy.deepcopy(dict(data))
    node = out
    for key in path[:-1]:
        if node.get(key) is None:
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise SpaceError(f"{'.'.join(path)}: not a mapping in the space file")
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
                                   with_value(data, ("ties", "width"), "non_decreasing")))
        if space.stages["depth"].size() > 1:
            for kind in {None: ("non_decreasing", "same"), "non_decreasing": ("same",)}.get(ties.get("depth"), ()):
                out.append(Restriction("tie", "ties.depth", f"ties.depth: {kind}",
                                       with_value(data, ("ties", "depth"), kind)))
        shared: list[str] = []
        for branch in space.branches():
            for name, dist in space.structural_fields(branch).items():
                if dist.size() > 1 and ties.get(name) != "same" and name not in shared:
                    shared.append(name)
        for name in shared:
            out.append(Restriction("tie", f"ties.{name}", f"ties.{name}: same", with_value(data, ("ties", name), "same")))
    for path, dist in _locations(data, space):
        key = ".".join(path)
        if dist.kind == "choice":
            raw = _raw_choices(data, path)  # as written in the file, in the order of dist.values
            for i, value in enumerate(dist.values):
                edited = with_value(data, path, _node(dist, raw[:i] + raw[i + 1:]))
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
                out.append(Restriction("cut", key, f"{text} ({label})", with_value(data, path, node)))
    return out


def _raw_choices(data: Mapping[str, Any], path: Sequence[str]) -> list[Any]:
    node: Any = data
    for key in path:
        node = node[key]
    return list(node["choice"])


def is_width(key: str) -> bool:
    """Whether the key is a width: widths are solved from the band, so Space.size does not count them."""
    last = key.rsplit(".", 1)[-1]
    return last in ("width", "mid_width") or last in INCEPTION_WIDTHS
