"""The one fit of a spec to a dataset's input: image side, channels and classes."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import NetSpec, SpecError

__all__ = ["InputShape", "fit", "input_of", "smallest_side"]


@dataclass(frozen=True)
class InputShape:
    """What a dataset feeds a net: `resolution` x `resolution` images of `in_channels`, `num_classes` labels."""

    resolution: int
    in_channels: int
    num_classes: int

    def __post_init__(self) -> None:
        for name in ("resolution", "in_channels", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"input {name}: {value!r} must be a whole number >= 1")

    def describe(self) -> str:
        return f"{self.resolution}x{self.resolution}x{self.in_channels}, {self.num_classes} classes"


def input_of(spec: NetSpec) -> InputShape:
    """The input a spec is made for."""
    return InputShape(spec.resolution, spec.in_channels, spec.num_classes)


def fit(spec: NetSpec, shape: InputShape) -> NetSpec:
    """The spec at the dataset's input: the net that is counted, stored, trained and exported.

    Used before counting, before training and before storing, so that those are one net (same id, FLOPs
    and params). A spec that cannot take the input (its grid collapses) raises SpecError."""
    changes = {k: v for k, v in (("resolution", shape.resolution), ("in_channels", shape.in_channels),
                                 ("num_classes", shape.num_classes)) if getattr(spec, k) != v}
    return spec.replace(**changes) if changes else spec


def smallest_side(spec: NetSpec, largest: int) -> int:
    """The smallest image side in 1..`largest` at which `spec` still validates (its grid never collapses);
    `largest` + 1 if none does. Found by bisection: a net that takes a side takes every larger one."""
    lo, hi = 1, largest + 1
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            spec.replace(resolution=mid).validate()
            hi = mid
        except SpecError:
            lo = mid + 1
    return lo
