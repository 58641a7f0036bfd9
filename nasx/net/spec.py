"""What a net is: frozen dataclasses for stem -> stages -> head, JSON/YAML round-trip, stable id, validation.

A `NetSpec` is the single source of truth that `nasx.build` (an nn.Module), `nasx.complexity`
(its analytic twin) and every report read. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from ..errors import NasxError

__all__ = [
    "SpecError",
    "Grid",
    "pair",
    "Pool",
    "Stem",
    "PlainBlock",
    "ResidualBlock",
    "AggregatedBlock",
    "InceptionBlock",
    "Conv",
    "BlockPath",
    "MultiBranchBlock",
    "INCEPTION_STEMS",
    "inception_stem_layers",
    "Block",
    "AuxHead",
    "Stage",
    "Head",
    "NetSpec",
    "BRANCHES",
    "STEMS",
    "HEADS",
    "conv_out",
    "pool_out",
    "load_spec",
    "paths_from",
]


class SpecError(NasxError, ValueError):
    """An impossible or malformed spec; the message names the place (stage and field)."""


STEMS = ("imagenet", "cifar", "simple", "alexnet", "googlenet", "inception_v3", "inception_v4", "inception_resnet_v1",
         "none")
INCEPTION_STEMS = ("inception_v3", "inception_v4", "inception_resnet_v1")  # layers from inception_stem_layers
HEADS = ("linear", "classifier")
AUX_HEADS = ("inception_v3", "googlenet")
BRANCHES = ("plain", "residual", "aggregated", "inception", "multibranch")
PADDINGS = ("same", "valid")
POOLS = ("max", "avg")


OMIT_DEFAULT = {"omit_default": True}  # field metadata: see _omitted


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Output side of a max-pool, including PyTorch's ceil_mode rule (last window must start inside)."""
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """(h, w) from an int or a pair (a square or an asymmetric kernel / padding)."""
    return (value, value) if isinstance(value, int) else (value[0], value[1])


class Grid:
    """The feature map's side (h, w) as validation walks the net op by op; an op that cannot apply is a
    SpecError naming it.

    An op cannot apply when its window is larger than its padded input (PyTorch refuses it: the side
    would drop below 1), or when it strides an axis that is already 1 pixel: the grid has collapsed
    there, so the downsampling that the net was drawn with no longer happens.
    """

    def __init__(self, resolution: int):
        self.resolution = resolution
        self.h = self.w = resolution

    def copy(self) -> "Grid":
        grid = Grid(self.resolution)
        grid.h, grid.w = self.h, self.w
        return grid

    def conv(self, kernel: int | tuple[int, int], stride: int, padding: int | tuple[int, int], where: str) -> None:
        (kh, kw), (ph, pw) = pair(kernel), pair(padding)
        what = f"{kh}x{kw} conv" + (f" with stride {stride}" if stride > 1 else "")
        self._apply(conv_out(self.h, kh, stride, ph), conv_out(self.w, kw, stride, pw), stride, what, where)

    def pool(self, pool: "Pool", where: str) -> None:
        k, s = pool.kernel, pool.stride
        what = f"{k}x{k} {pool.kind}-pool" + (f" with stride {s}" if s > 1 else "")
        self._apply(pool.out(self.h), pool.out(self.w), s, what, where)

    def _apply(self, h: int, w: int, stride: int, what: str, where: str) -> None:
        if h < 1 or w < 1:
            self._fail(where, f"a {what} cannot apply to the {self.h}x{self.w} grid: it gives {h}x{w}")
        if stride > 1 and (self.h == 1 or self.w == 1):
            self._fail(where, f"a {what} strides the {self.h}x{self.w} grid: nothing is left to downsample")
        self.h, self.w = h, w

    def _fail(self, where: str, detail: str) -> None:
        if where == "stem" or where.startswith("stem."):
            raise SpecError(f"stem: resolution {self.resolution} collapses in the stem ({where}: {detail})")
        raise SpecError(f"{where}: resolution collapses ({detail}; input {self.resolution}x{self.resolution})")


# ---------------------------------------------------------------------------------------------
# Building blocks of a spec


@dataclass(frozen=True)
class Pool:
    """A max- or average pool: kernel, stride, padding, ceil_mode (as torch.nn.MaxPool2d / AvgPool2d)."""

    kernel: int = 2
    stride: int = 2
    padding: int = 0
    ceil_mode: bool = False
    kind: str = field(default="max", metadata=OMIT_DEFAULT)  # max | avg
    count_include_pad: bool = field(default=True, metadata=OMIT_DEFAULT)  # avg only: torch's default; timm's Inception nets use False

    def out(self, size: int) -> int:
        return pool_out(size, self.kernel, self.stride, self.padding, self.ceil_mode)

    def _check(self, where: str) -> None:
        _positive(self.kernel, f"{where}.kernel")
        _positive(self.stride, f"{where}.stride")
        if self.padding < 0 or 2 * self.padding > self.kernel:
            raise SpecError(f"{where}.padding: {self.padding} must lie in 0..kernel/2")
        if self.kind not in POOLS:
            raise SpecError(f"{where}.kind: {self.kind!r} is not 'max' or 'avg'")
        if self.kind == "max" and not self.count_include_pad:
            raise SpecError(f"{where}.count_include_pad: only an average pool has it")


@dataclass(frozen=True)
class Stem:
    """The layers before the first stage.

    kind: imagenet (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), cifar (3x3/1 conv, BN, ReLU), simple
    (3x3/2 conv, BN, ReLU: the RegNets' SimpleStemIN, Radosavovic et al. 2020), alexnet (11x11/4 conv with bias, ReLU, 3x3/2 max-pool), googlenet (7x7/2 conv, pool,
    1x1 conv to `mid_width`, 3x3 conv, pool; each conv with BN and ReLU), inception_v3 (3x3/2 32,
    3x3 32, 3x3 64 same, pool, 1x1 80, 3x3 `width`, pool; 'valid' unless said), inception_v4 (the
    v3 stem's first three convs, then three concatenations: pool | 3x3/2 96; 1x1 64, 3x3 96 |
    1x1 64, 1x7, 7x1, 3x3 96; 3x3/2 (`width` - 192) | pool), inception_resnet_v1 (Szegedy et al.
    2017, Fig. 14: the v3 stem to its 3x3 192, then 3x3/2 `width` where v3 pools), none (identity).
    The Inception stems' layers are `inception_stem_layers`, read by validation, build and complexity alike.
    """

    kind: str = "cifar"
    width: int = 16
    mid_width: int | None = None  # googlenet only: width of its 7x7 and 1x1 convs
    lrn: bool = field(default=False, metadata=OMIT_DEFAULT)  # alexnet only: LRN after the ReLU (Krizhevsky et al.)

    def _check(self) -> None:
        if self.kind not in STEMS:
            raise SpecError(f"stem.kind: unknown stem {self.kind!r} (choose from {', '.join(STEMS)})")
        if self.kind != "none":
            _positive(self.width, "stem.width")
        if self.lrn and self.kind != "alexnet":
            raise SpecError(f"stem.lrn: only the alexnet stem has one (kind is {self.kind!r})")
        if self.kind == "inception_v4" and self.width <= 192:
            raise SpecError(f"stem.width: {self.width} must exceed 192 (the pool path of Mixed-5a passes 192 channels)")
        if self.mid_width is not None:
            if self.kind != "googlenet":
                raise SpecError(f"stem.mid_width: only the googlenet stem has one (kind is {self.kind!r})")
            _positive(self.mid_width, "stem.mid_width")

    def _walk(self, grid: Grid) -> None:
        """The stem's convs and pools on the grid (the twin of build.make_stem's shapes)."""
        if self.kind == "imagenet":
            grid.conv(7, 2, 3, "stem.conv")
            grid.pool(Pool(3, 2, 1), "stem.pool")
        elif self.kind == "simple":
            grid.conv(3, 2, 1, "stem.conv")
        elif self.kind == "alexnet":
            grid.conv(11, 4, 2, "stem.conv")
            grid.pool(Pool(3, 2), "stem.pool")
        elif self.kind == "googlenet":
            grid.conv(7, 2, 3, "stem.conv1")
            grid.pool(Pool(3, 2, ceil_mode=True), "stem.pool1")
            grid.conv(3, 1, 1, "stem.conv3")
            grid.pool(Pool(3, 2, ceil_mode=True), "stem.pool2")
        elif self.kind in INCEPTION_STEMS:
            w_in = 0  # widths do not matter for the side
            for i, layer in enumerate(inception_stem_layers(self), start=1):
                if isinstance(layer, MultiBranchBlock):
                    layer._walk_paths(grid, w_in, f"stem.mixed{i}")
                else:
                    _walk_layer(grid, layer, f"stem.{'conv' if isinstance(layer, Conv) else 'pool'}{i}")


@dataclass(frozen=True)
class PlainBlock:
    """One k x k conv (+ BN) + ReLU (+ LRN); a plain stage of depth d stacks d of them (AlexNet, VGG).

    `groups` splits the conv into groups (AlexNet's two GPUs); `lrn` is Krizhevsky et al.'s local
    response normalization after the ReLU (n = 5, k = 2, alpha = 1e-4, beta = 0.75).
    """

    branch: Literal["plain"] = "plain"
    kernel: int = 3
    bn: bool = False
    bias: bool = True  # torchvision's AlexNet/VGG keep the conv bias, with or without BN
    groups: int = field(default=1, metadata=OMIT_DEFAULT)
    lrn: bool = field(default=False, metadata=OMIT_DEFAULT)

    def _check(self, where: str) -> None:
        _positive(self.kernel, f"{where}.kernel")
        if self.kernel % 2 == 0:
            raise SpecError(f"{where}.kernel: {self.kernel} is even; 'same' padding needs an odd kernel")
        _positive(self.groups, f"{where}.groups")

    def _walk(self, grid: Grid, stride: int, where: str) -> None:
        grid.conv(self.kernel, stride, self.kernel // 2, where)


@dataclass(frozen=True)
class ResidualBlock:
    """Residual block: basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) with w_b = width * bottleneck_ratio.

    shortcut: projection (1x1 conv + BN when the shape changes, ResNet option B) or zeropad
    (strided identity with zero-padded channels, option A of He et al. 2016, used by the CIFAR ResNets).
    """

    branch: Literal["residual"] = "residual"
    kind: str = "basic"
    bottleneck_ratio: float = 0.25  # w_b / w_out, bottleneck only (pycls's bot_mul)
    shortcut: str = "projection"

    def _check(self, where: str) -> None:
        if self.kind not in ("basic", "bottleneck"):
            raise SpecError(f"{where}.kind: {self.kind!r} is not 'basic' or 'bottleneck'")
        if not (isinstance(self.bottleneck_ratio, (int, float)) and self.bottleneck_ratio > 0):
            raise SpecError(f"{where}.bottleneck_ratio: {self.bottleneck_ratio!r} must be > 0")
        _check_shortcut(self.shortcut, where)

    def _walk(self, grid: Grid, stride: int, where: str) -> None:
        grid.conv(3, stride, 1, where)  # the strided 3x3 (its projection shortcut gives the same side)


@dataclass(frozen=True)
class AggregatedBlock:
    """ResNeXt bottleneck: 1x1 to w_b = cardinality * group_width, grouped 3x3 (cardinality groups), 1x1."""

    branch: Literal["aggregated"] = "aggregated"
    cardinality: int = 32
    group_width: int = 4
    shortcut: str = "projection"

    @property
    def w_b(self) -> int:
        return self.cardinality * self.group_width

    def _check(self, where: str) -> None:
        _positive(self.cardinality, f"{where}.cardinality")
        _positive(self.group_width, f"{where}.group_width")
        _check_shortcut(self.shortcut, where)

    def _walk(self, grid: Grid, stride: int, where: str) -> None:
        grid.conv(3, stride, 1, where)  # the strided 3x3 (its projection shortcut gives the same side)


@dataclass(frozen=True)
class InceptionBlock:
    """GoogLeNet's module: 1x1 | 1x1->3x3 | 1x1->kxk | 3x3 max-pool->1x1, concatenated.

    `kernel_5x5` is the kernel of the third branch: torchvision uses 3 (a known deviation from the
    paper's 5). With `residual`, the concatenation goes through a 1x1 conv + BN to the stage width,
    times `scale`, and is added to the (projected) input before the ReLU (Inception-ResNet style).

    The v2/v3 forms, for design spaces (the zoo's v3/v4 use MultiBranchBlock): `factorize: 3x3`
    builds the kxk as (k - 1) / 2 stacked 3x3s (Szegedy et al. 2016, Fig. 5); `factorize:
    asymmetric` builds the second branch as 1xn, nx1 and the third as nx1, 1xn, nx1, 1xn at the
    reduce width (Fig. 6, torchvision's InceptionC, `kernel_5x5` unused); `pool_kind: avg` averages
    in the fourth branch. At their defaults these fields leave the module, its JSON and id unchanged.
    """

    branch: Literal["inception"] = "inception"
    c1x1: int = 64
    c3x3_reduce: int = 96
    c3x3: int = 128
    c5x5_reduce: int = 16
    c5x5: int = 32
    pool_proj: int = 32
    kernel_5x5: int = 3
    residual: bool = False
    factorize: str = field(default="none", metadata=OMIT_DEFAULT)  # none | 3x3 | asymmetric
    n: int = field(default=7, metadata=OMIT_DEFAULT)  # asymmetric only: 1xn and nx1
    pool_kind: str = field(default="max", metadata=OMIT_DEFAULT)  # max | avg
    scale: float = field(default=1.0, metadata=OMIT_DEFAULT)  # residual only

    @property
    def w_concat(self) -> int:
        return self.c1x1 + self.c3x3 + self.c5x5 + self.pool_proj

    def tower_3x3(self) -> tuple["Conv", ...]:
        """The second branch after its 1x1 reduce: 3x3, or 1xn, nx1."""
        if self.factorize == "asymmetric":
            return (Conv(self.c3x3_reduce, (1, self.n)), Conv(self.c3x3, (self.n, 1)))
        return (Conv(self.c3x3, 3),)

    def tower_5x5(self) -> tuple["Conv", ...]:
        """The third branch after its 1x1 reduce: kxk, (k - 1) / 2 3x3s, or nx1, 1xn, nx1, 1xn."""
        if self.factorize == "3x3":
            return tuple(Conv(self.c5x5, 3) for _ in range(self.kernel_5x5 // 2))
        if self.factorize == "asymmetric":
            r, n = self.c5x5_reduce, self.n
            return (Conv(r, (n, 1)), Conv(r, (1, n)), Conv(r, (n, 1)), Conv(self.c5x5, (1, n)))
        return (Conv(self.c5x5, self.kernel_5x5),)

    def _check(self, where: str) -> None:
        for name in ("c1x1", "c3x3_reduce", "c3x3", "c5x5_reduce", "c5x5", "pool_proj"):
            _positive(getattr(self, name), f"{where}.{name}")
        if self.kernel_5x5 not in (3, 5):
            raise SpecError(f"{where}.kernel_5x5: {self.kernel_5x5} must be 3 (torchvision) or 5 (paper)")
        if self.factorize not in ("none", "3x3", "asymmetric"):
            raise SpecError(f"{where}.factorize: {self.factorize!r} is not 'none', '3x3' or 'asymmetric'")
        _positive(self.n, f"{where}.n")
        if self.n % 2 == 0:
            raise SpecError(f"{where}.n: {self.n} is even; 'same' padding needs an odd n")
        if self.pool_kind not in POOLS:
            raise SpecError(f"{where}.pool_kind: {self.pool_kind!r} is not 'max' or 'avg'")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool) or self.scale <= 0:
            raise SpecError(f"{where}.scale: {self.scale!r} must be a number > 0")
        if self.scale != 1.0 and not self.residual:
            raise SpecError(f"{where}.scale: only a residual module scales (set residual: true)")

    def _walk(self, grid: Grid, stride: int, where: str) -> None:
        """Every branch keeps the side ('same' convs, a 3x3/1 pool with padding 1)."""


@dataclass(frozen=True)
class Conv:
    """One conv (no bias), BN, ReLU of a multi-branch path: `width` channels, a k x k or kh x kw
    kernel, a stride, and 'same' (k // 2 on each side) or 'valid' (no) padding."""

    width: int
    kernel: int | tuple[int, int] = 1
    stride: int = 1
    padding: str = "same"

    def __post_init__(self) -> None:
        kernel = self.kernel
        if isinstance(kernel, list):  # from JSON / YAML
            kernel = tuple(kernel)
        if isinstance(kernel, tuple) and len(kernel) == 2 and kernel[0] == kernel[1]:
            kernel = kernel[0]  # one spelling for a square kernel, so equal convs compare and hash equal
        object.__setattr__(self, "kernel", kernel)

    @property
    def pad(self) -> tuple[int, int]:
        """(ph, pw): k // 2 for 'same', 0 for 'valid'."""
        kh, kw = pair(self.kernel)
        return (kh // 2, kw // 2) if self.padding == "same" else (0, 0)

    def _check(self, where: str) -> None:
        _positive(self.width, f"{where}.width")
        if not (isinstance(self.kernel, int) or (isinstance(self.kernel, tuple) and len(self.kernel) == 2)):
            raise SpecError(f"{where}.kernel: {self.kernel!r} must be k or [kh, kw]")
        for k in pair(self.kernel):
            _positive(k, f"{where}.kernel")
        _positive(self.stride, f"{where}.stride")
        if self.padding not in PADDINGS:
            raise SpecError(f"{where}.padding: {self.padding!r} is not 'same' or 'valid'")
        if self.padding == "same" and any(k % 2 == 0 for k in pair(self.kernel)):
            raise SpecError(f"{where}.kernel: {self.kernel} has an even side; 'same' padding needs odd ones")


@dataclass(frozen=True)
class BlockPath:
    """One path of a multi-branch block: [pool], convs in sequence, [split: parallel convs on the
    path's output, concatenated (Inception-v3's module E, v4's module C)]."""

    convs: tuple[Conv, ...] = ()
    pool: Pool | None = None
    split: tuple[Conv, ...] = ()

    def w_out(self, w_in: int) -> int:
        """Channels this path adds to the concatenation (a bare pool passes its input's)."""
        if self.split:
            return sum(c.width for c in self.split)
        return self.convs[-1].width if self.convs else w_in

    def _check(self, where: str) -> None:
        if not isinstance(self.convs, tuple) or not isinstance(self.split, tuple):
            raise SpecError(f"{where}: convs and split must be tuples of Conv")
        if not (self.convs or self.pool or self.split):
            raise SpecError(f"{where}: an empty path (give it convs, a pool or a split)")
        if len(self.split) == 1:
            raise SpecError(f"{where}.split: one conv is not a split (put it in convs)")
        if self.pool is not None:
            if not isinstance(self.pool, Pool):
                raise SpecError(f"{where}.pool: must be a Pool")
            self.pool._check(f"{where}.pool")
        for name in ("convs", "split"):
            for j, conv in enumerate(getattr(self, name), start=1):
                if not isinstance(conv, Conv):
                    raise SpecError(f"{where}.{name} {j}: must be a Conv")
                conv._check(f"{where}.{name} {j}")

    def _walk(self, grid: Grid, where: str) -> None:
        if self.pool is not None:
            grid.pool(self.pool, f"{where}.pool")
        for j, conv in enumerate(self.convs, start=1):
            grid.conv(conv.kernel, conv.stride, conv.pad, f"{where}.convs {j}")
        sides = []
        for j, conv in enumerate(self.split, start=1):
            branch = grid.copy()
            branch.conv(conv.kernel, conv.stride, conv.pad, f"{where}.split {j}")
            sides.append((branch.h, branch.w))
        if sides:
            if len(set(sides)) > 1:
                raise SpecError(f"{where}.split: its convs give different sides {sides}; concatenation needs one")
            grid.h, grid.w = sides[0]


@dataclass(frozen=True)
class MultiBranchBlock:
    """A general Inception module: paths on one input, concatenated; residual form: the
    concatenation through a 1x1 conv (with bias, no BN) to the stage width, times `scale`, plus the
    input (1x1 conv + BN projection when the width changes), then ReLU unless `activation` is off.

    Reduction modules are paths that stride (with 'valid' padding) beside a parameter-free pool path.
    Inception-v2/v3 factorize a 5x5 into two 3x3s and an n x n into 1 x n and n x 1 (Szegedy et al.
    2016); Inception-ResNet scales residuals by 0.1-0.3 (Szegedy et al. 2017).
    """

    branch: Literal["multibranch"] = "multibranch"
    paths: tuple[BlockPath, ...] = ()
    residual: bool = False
    scale: float = 1.0
    activation: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.paths, list):
            object.__setattr__(self, "paths", tuple(self.paths))

    def w_concat(self, w_in: int) -> int:
        """Channels of the concatenation for a w_in-channel input."""
        return sum(p.w_out(w_in) for p in self.paths)

    def _check(self, where: str) -> None:
        if not isinstance(self.paths, tuple) or not self.paths:
            raise SpecError(f"{where}.paths: at least one path")
        for i, path in enumerate(self.paths, start=1):
            if not isinstance(path, BlockPath):
                raise SpecError(f"{where}.path {i}: must be a BlockPath")
            path._check(f"{where}.path {i}")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool) or self.scale <= 0:
            raise SpecError(f"{where}.scale: {self.scale!r} must be a number > 0")
        if not self.residual and (self.scale != 1.0 or not self.activation):
            raise SpecError(f"{where}.scale: scale and activation belong to the residual form (set residual: true)")

    def _walk_paths(self, grid: Grid, w_in: int, where: str) -> None:
        """Every path from the block's input; they must agree on the output side."""
        sides = []
        for i, path in enumerate(self.paths, start=1):
            branch = grid.copy()
            path._walk(branch, f"{where}.path {i}")
            sides.append((branch.h, branch.w))
        if len(set(sides)) > 1:
            listed = ", ".join(f"path {i}: {h}x{w}" for i, (h, w) in enumerate(sides, start=1))
            raise SpecError(f"{where}.paths: the paths give different sides ({listed}); concatenation needs one")
        if self.residual and sides[0] != (grid.h, grid.w):
            raise SpecError(f"{where}.residual: the paths change the side {grid.h}x{grid.w} to "
                            f"{sides[0][0]}x{sides[0][1]}; a residual block must keep it")
        grid.h, grid.w = sides[0]


def _walk_layer(grid: Grid, layer: "Conv | Pool", where: str) -> None:
    if isinstance(layer, Conv):
        grid.conv(layer.kernel, layer.stride, layer.pad, where)
    else:
        grid.pool(layer, where)


def inception_stem_layers(stem: Stem) -> tuple["Conv | Pool | MultiBranchBlock", ...]:
    """The Inception-v3 stem (torchvision's: Conv2d_1a ... maxpool2), the Inception-v4 stem (timm's
    features 0-5) or the Inception-ResNet-v1 stem (Szegedy et al. 2017, Fig. 14) as a sequence of
    convs, pools and multi-branch concatenations."""
    layers: tuple = (Conv(32, 3, 2, "valid"), Conv(32, 3, 1, "valid"), Conv(64, 3, 1, "same"))
    if stem.kind == "inception_v3":
        return layers + (Pool(3, 2), Conv(80, 1), Conv(stem.width, 3, 1, "valid"), Pool(3, 2))
    if stem.kind == "inception_resnet_v1":  # Fig. 14: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35
        return layers + (Pool(3, 2), Conv(80, 1), Conv(192, 3, 1, "valid"), Conv(stem.width, 3, 2, "valid"))
    return layers + (
        MultiBranchBlock(paths=(BlockPath(pool=Pool(3, 2)), BlockPath(convs=(Conv(96, 3, 2, "valid"),)))),  # Mixed-3a: 160
        MultiBranchBlock(paths=(  # Mixed-4a: 192
            BlockPath(convs=(Conv(64, 1), Conv(96, 3, 1, "valid"))),
            BlockPath(convs=(Conv(64, 1), Conv(64, (1, 7)), Conv(64, (7, 1)), Conv(96, 3, 1, "valid"))),
        )),
        MultiBranchBlock(paths=(BlockPath(convs=(Conv(stem.width - 192, 3, 2, "valid"),)), BlockPath(pool=Pool(3, 2)))),  # Mixed-5a
    )


Block = Union[PlainBlock, ResidualBlock, AggregatedBlock, InceptionBlock, MultiBranchBlock]
_BLOCKS: dict[str, type] = {
    "plain": PlainBlock,
    "residual": ResidualBlock,
    "aggregated": AggregatedBlock,
    "inception": InceptionBlock,
    "multibranch": MultiBranchBlock,
}


@dataclass(frozen=True)
class AuxHead:
    """Auxiliary classifier on a stage's output, run in training only (torchvision's InceptionAux).
    Its parameters count; the eval-mode FLOPs and activations do not include it.

    inception_v3: 5x5/3 avg-pool, 1x1 conv `width`, 5x5 'valid' conv `conv_width` (each with BN,
    ReLU), global average pool, FC;
    googlenet: adaptive average pool to pool_size x pool_size, 1x1 conv `width` (BN, ReLU),
    FC-hidden, ReLU, dropout, FC.
    """

    width: int = 128
    conv_width: int = 768  # inception_v3 only
    kind: str = field(default="inception_v3", metadata=OMIT_DEFAULT)
    pool_size: int = field(default=4, metadata=OMIT_DEFAULT)  # googlenet only
    hidden: int = field(default=1024, metadata=OMIT_DEFAULT)  # googlenet only
    dropout: float = field(default=0.7, metadata=OMIT_DEFAULT)  # googlenet only

    def _check(self, where: str) -> None:
        if self.kind not in AUX_HEADS:
            raise SpecError(f"{where}.kind: unknown auxiliary head {self.kind!r} (choose from {', '.join(AUX_HEADS)})")
        _positive(self.width, f"{where}.width")
        _positive(self.conv_width, f"{where}.conv_width")
        _positive(self.pool_size, f"{where}.pool_size")
        _positive(self.hidden, f"{where}.hidden")
        if not (isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool) and 0 <= self.dropout < 1):
            raise SpecError(f"{where}.dropout: {self.dropout!r} must lie in [0, 1)")

    def _walk(self, grid: Grid, where: str) -> None:
        if self.kind == "googlenet":
            return  # an adaptive pool fits any grid
        grid = grid.copy()  # a side branch: the trunk's grid goes on unchanged
        grid.pool(Pool(5, 3, kind="avg"), f"{where} pool")
        grid.conv(5, 1, 0, f"{where} 5x5 conv")


@dataclass(frozen=True)
class Stage:
    """`depth` blocks of one kind to `width` channels; downsampling by the first block's `stride`
    and/or a max-pool before the stage; optionally an auxiliary classifier on its output."""

    depth: int
    width: int
    block: Block = field(default_factory=PlainBlock)
    stride: int = 1
    pool: Pool | None = None
    aux: AuxHead | None = field(default=None, metadata=OMIT_DEFAULT)


@dataclass(frozen=True)
class Head:
    """After the last stage: optional max-pool, then

    linear: global average pool, dropout, linear (ResNet, GoogLeNet);
    classifier: adaptive average pool to pool_size x pool_size, FC-hidden, ReLU, dropout,
    FC-hidden, ReLU, dropout, FC (AlexNet 6x6, VGG 7x7).
    """

    kind: str = "linear"
    dropout: float = 0.0
    pool: Pool | None = None
    pool_size: int = 7  # classifier only
    hidden: int = 4096  # classifier only

    def _check(self) -> None:
        if self.kind not in HEADS:
            raise SpecError(f"head.kind: unknown head {self.kind!r} (choose from {', '.join(HEADS)})")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise SpecError(f"head.dropout: {self.dropout!r} must lie in [0, 1)")
        if self.pool is not None:
            self.pool._check("head.pool")
        if self.kind == "classifier":
            _positive(self.pool_size, "head.pool_size")
            _positive(self.hidden, "head.hidden")


@dataclass(frozen=True)
class NetSpec:
    """A whole net: input shape, stem, stages, head. Frozen, hashable, JSON/YAML round-trip."""

    stem: Stem
    stages: tuple[Stage, ...]
    head: Head = field(default_factory=Head)
    in_channels: int = 3
    num_classes: int = 10
    resolution: int = 32
    # every BatchNorm of the net (GoogLeNet and the Inception nets use eps 1e-3); a default value is
    # left out of the JSON, so the specs and ids written before these fields existed do not change
    bn_eps: float = field(default=1e-5, metadata=OMIT_DEFAULT)
    bn_momentum: float = field(default=0.1, metadata=OMIT_DEFAULT)

    def __post_init__(self) -> None:
        self.validate()

    # -- identity ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=indent is None)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def id(self) -> str:
        """Stable content id: the first 12 hex digits of sha256 of the canonical JSON."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: Any) -> "NetSpec":
        return _net_from_dict(data)

    @classmethod
    def from_json(cls, text: str) -> "NetSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        except RecursionError:
            raise SpecError(TOO_DEEP) from None
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, text: str) -> "NetSpec":
        return cls.from_dict(parse_yaml(text))

    def replace(self, **changes: Any) -> "NetSpec":
        return dataclasses.replace(self, **changes)

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> "NetSpec":
        """Raise SpecError naming the stage and field of the first impossible setting; else return self: the
        net's own fields, then stage by stage its rules and its walk over the grid, then the head's pool."""
        self._check_fields()
        grid = Grid(self.resolution)
        self.stem._walk(grid)
        w_in = self.stem_width
        for i, stage in enumerate(self.stages, start=1):
            self._check_stage(f"stage {i}", stage, w_in)
            w_in = self._walk_stage(f"stage {i}", stage, grid, w_in)
        if self.head.pool is not None:
            grid.pool(self.head.pool, "head.pool")
        return self

    def _check_fields(self) -> None:
        """The input, the BN settings, the stem, the head and that the stages are a tuple."""
        _positive(self.in_channels, "in_channels")
        _positive(self.num_classes, "num_classes")
        _positive(self.resolution, "resolution")
        if not (isinstance(self.bn_eps, (int, float)) and not isinstance(self.bn_eps, bool) and self.bn_eps > 0):
            raise SpecError(f"bn_eps: {self.bn_eps!r} must be a number > 0")
        if not (isinstance(self.bn_momentum, (int, float)) and not isinstance(self.bn_momentum, bool)
                and 0 <= self.bn_momentum <= 1):
            raise SpecError(f"bn_momentum: {self.bn_momentum!r} must lie in [0, 1]")
        if not isinstance(self.stem, Stem):
            raise SpecError("stem: must be a Stem")
        self.stem._check()
        if not isinstance(self.head, Head):
            raise SpecError("head: must be a Head")
        self.head._check()
        if not isinstance(self.stages, tuple):
            raise SpecError("stages: must be a tuple of Stage")

    def _check_stage(self, where: str, stage: "Stage", w_in: int) -> None:
        """A stage's own rules (depth, width, stride, block) and those its block kind sets on the widths and
        stride, given the input width `w_in`."""
        if not isinstance(stage, Stage):
            raise SpecError(f"{where}: must be a Stage")
        if not isinstance(stage.depth, int) or isinstance(stage.depth, bool) or stage.depth < 0:
            raise SpecError(f"{where}.depth: {stage.depth!r} must be an integer >= 0")
        _positive(stage.width, f"{where}.width")
        _positive(stage.stride, f"{where}.stride")
        block = stage.block
        if type(block) not in _BLOCKS.values():
            raise SpecError(f"{where}.block: must be one of {', '.join(BRANCHES)}")
        block._check(f"{where}.block")
        if isinstance(block, AggregatedBlock) and stage.width % block.cardinality:
            # grouped convs need it, and a ResNeXt stage's output splits into the same groups
            raise SpecError(
                f"{where}.width: {stage.width} is not divisible by cardinality {block.cardinality}"
            )
        if isinstance(block, ResidualBlock) and block.kind == "bottleneck":
            if self.bottleneck_width(stage) < 1:
                raise SpecError(f"{where}.block.bottleneck_ratio: gives a bottleneck width below 1")
        if isinstance(block, InceptionBlock):
            if stage.stride != 1:
                raise SpecError(f"{where}.stride: inception stages downsample by pool, stride must be 1")
            if not block.residual and block.w_concat != stage.width:
                raise SpecError(
                    f"{where}.width: {stage.width} must equal the sum of the branch widths "
                    f"c1x1 + c3x3 + c5x5 + pool_proj = {block.w_concat} (or set residual: true)"
                )
        if isinstance(block, PlainBlock) and stage.depth > 0:
            for name, w in (("width", stage.width), ("input width", w_in)):
                if w % block.groups:
                    raise SpecError(f"{where}.block.groups: the {name} {w} is not divisible by {block.groups} groups")
        if isinstance(block, MultiBranchBlock) and stage.stride != 1:
            raise SpecError(f"{where}.stride: a multibranch stage strides in its paths, stride must be 1")
        if (
            isinstance(block, (ResidualBlock, AggregatedBlock))
            and block.shortcut == "zeropad"
            and stage.depth > 0
            and stage.width < w_in
        ):
            raise SpecError(f"{where}.block.shortcut: zeropad cannot shrink {w_in} to {stage.width} channels")

    @staticmethod
    def _walk_stage(where: str, stage: "Stage", grid: "Grid", w_in: int) -> int:
        """Walk the grid through the stage (its pool, its blocks, its auxiliary head); the width it hands on."""
        block = stage.block
        if stage.pool is not None:
            stage.pool._check(f"{where}.pool")
            grid.pool(stage.pool, f"{where}.pool")
        if isinstance(block, MultiBranchBlock):
            for j in range(1, stage.depth + 1):  # every block may reduce the grid
                at = f"{where}.block" + (f" (b{j})" if stage.depth > 1 else "")
                block._walk_paths(grid, w_in, at)
                if not block.residual and block.w_concat(w_in) != stage.width:
                    raise SpecError(
                        f"{at}.paths: their concatenation has {block.w_concat(w_in)} channels for a "
                        f"{w_in}-channel input, not the stage width {stage.width} (or set residual: true)"
                    )
                w_in = stage.width
        elif stage.depth > 0:
            # only the first block strides; the others keep the side
            block._walk(grid, stage.stride, f"{where}.stride" if stage.stride > 1 else f"{where}.block")
            w_in = stage.width
        if stage.aux is not None:
            if not isinstance(stage.aux, AuxHead):
                raise SpecError(f"{where}.aux: must be an AuxHead")
            stage.aux._check(f"{where}.aux")
            stage.aux._walk(grid, f"{where}.aux")
        return w_in

    # -- derived shapes (shared by build and complexity) ---------------------------------------
    @property
    def stem_width(self) -> int:
        return self.in_channels if self.stem.kind == "none" else self.stem.width

    @staticmethod
    def bottleneck_width(stage: Stage) -> int:
        block = stage.block
        if isinstance(block, AggregatedBlock):
            return block.w_b
        return int(round(stage.width * block.bottleneck_ratio))

    def describe(self) -> str:
        """A short human description, e.g. `aggregated 3 stages d=(3,3,3) w=(256,512,1024) C=8 gw=64`."""
        branches = sorted({s.block.branch for s in self.stages}, key=BRANCHES.index)
        parts = [
            "+".join(branches) or "stem-only",
            f"{len(self.stages)} stages",
            "d=(" + ",".join(str(s.depth) for s in self.stages) + ")",
            "w=(" + ",".join(str(s.width) for s in self.stages) + ")",
        ]
        cards = [s.block.cardinality for s in self.stages if isinstance(s.block, AggregatedBlock)]
        gws = [s.block.group_width for s in self.stages if isinstance(s.block, AggregatedBlock)]
        if cards:
            parts.append("C=" + _compact(cards))
            parts.append("gw=" + _compact(gws))
        return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Helpers


def _compact(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "(" + ",".join(map(str, values)) + ")"


def _positive(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{where}: {value!r} must be an integer >= 1")


def _check_shortcut(shortcut: str, where: str) -> None:
    if shortcut not in ("projection", "zeropad"):
        raise SpecError(f"{where}.shortcut: {shortcut!r} is not 'projection' or 'zeropad'")


def _omitted(f: dataclasses.Field, value: Any) -> bool:
    """A field added after specs were first stored is left out of the JSON while it holds its default."""
    return bool(f.metadata.get("omit_default")) and value == f.default


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {
            f.name: _to_plain(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not _omitted(f, getattr(obj, f.name))
        }
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def _make(cls: type, data: Any, where: str, skip: tuple[str, ...] = ()) -> Any:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    unknown = sorted(set(data) - names - set(skip))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {k: v for k, v in data.items() if k in names}
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name in names
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    missing = [n for n in required if n not in kwargs]
    if missing:
        raise SpecError(f"{where}.{missing[0]}: missing")
    for name, value in kwargs.items():
        if (isinstance(value, float) and value.is_integer() and cls not in (ResidualBlock, MultiBranchBlock)
                and name not in ("dropout", "bn_eps", "bn_momentum")):
            kwargs[name] = int(value)  # YAML writes 64.0 where 64 is meant
    return cls(**kwargs)


def _pool_from(data: Any, where: str) -> Pool | None:
    return None if data is None else _make(Pool, data, where)


def _conv_from(data: Any, where: str) -> Conv:
    if isinstance(data, dict) and isinstance(data.get("kernel"), list):
        data = {**data, "kernel": tuple(int(k) if isinstance(k, float) and k.is_integer() else k for k in data["kernel"])}
    return _make(Conv, data, where)


def _path_from(data: Any, where: str) -> BlockPath:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = dict(data)
    for name in ("convs", "split"):
        items = fields.get(name, [])
        if not isinstance(items, list):
            raise SpecError(f"{where}.{name}: expected a list")
        fields[name] = tuple(_conv_from(c, f"{where}.{name} {j}") for j, c in enumerate(items, start=1))
    fields["pool"] = _pool_from(fields.get("pool"), f"{where}.pool")
    return _make(BlockPath, fields, where)


def _block_from(data: Any, where: str) -> Block:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(data).__name__}")
    branch = data.get("branch", "plain")
    if branch not in _BLOCKS:
        raise SpecError(f"{where}.branch: unknown branch type {branch!r} (choose from {', '.join(BRANCHES)})")
    if branch == "multibranch":
        data = {**data, "paths": paths_from(data.get("paths", []), where)}
    return _make(_BLOCKS[branch], data, where)


def paths_from(data: Any, where: str) -> tuple[BlockPath, ...]:
    """A multibranch block's paths from their JSON/YAML list (a spec file's, or a space file's)."""
    if not isinstance(data, list):
        raise SpecError(f"{where}.paths: expected a list")
    return tuple(_path_from(p, f"{where}.path {i}") for i, p in enumerate(data, start=1))


def _net_from_dict(data: Any) -> NetSpec:
    if not isinstance(data, dict):
        raise SpecError(f"spec: expected a mapping, got {type(data).__name__}")
    if "spec" in data and "stages" not in data:  # a `nasx sample --format jsonl` line
        data = data["spec"]
        if not isinstance(data, dict):
            raise SpecError("spec: expected a mapping")
    allowed = {f.name for f in dataclasses.fields(NetSpec)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(allowed))})")
    if "stages" not in data:
        raise SpecError("stages: missing")
    if not isinstance(data["stages"], list):
        raise SpecError("stages: expected a list")
    stages = []
    for i, s in enumerate(data["stages"], start=1):
        where = f"stage {i}"
        if not isinstance(s, dict):
            raise SpecError(f"{where}: expected a mapping")
        stage = dict(s)
        block = _block_from(stage.pop("block", {"branch": "plain"}), f"{where}.block")
        pool = _pool_from(stage.pop("pool", None), f"{where}.pool")
        aux = stage.pop("aux", None)
        aux = None if aux is None else _make(AuxHead, aux, f"{where}.aux")
        stages.append(_make(Stage, {**stage, "block": block, "pool": pool, "aux": aux}, where))
    stem = _make(Stem, data.get("stem", {}), "stem")
    head_data = dict(data.get("head", {}) or {})
    head_pool = _pool_from(head_data.pop("pool", None), "head.pool")
    head = _make(Head, {**head_data, "pool": head_pool}, "head")
    rest = {k: data[k] for k in ("in_channels", "num_classes", "resolution", "bn_eps", "bn_momentum") if k in data}
    return NetSpec(stem=stem, stages=tuple(stages), head=head, **rest)


# nesting deeper than Python's recursion limit: YAML's composer, json and every walk of the data recurse per level
TOO_DEEP = "nested too deeply to be a spec, space or study file"


def parse_yaml(text: str) -> Any:
    """yaml.safe_load, with a YAML error (or nesting too deep to read) as one SpecError line naming the problem and
    its position."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"not valid YAML: {problem}{where}") from None
    except RecursionError:
        raise SpecError(TOO_DEEP) from None


def read_text(path: Path) -> str:
    """A user's text file (spec, space, study file) as str: an unreadable or binary (not UTF-8) file is one
    SpecError line naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None


def load_spec(path: str | Path) -> NetSpec:
    """Read a spec file (.json, .yaml/.yml, or a one-line `nasx sample` .jsonl); SpecError names the file."""
    path = Path(path)
    text = read_text(path)
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return NetSpec.from_yaml(text)
        stripped = text.strip()
        if path.suffix.lower() == ".jsonl" and len(stripped.splitlines()) > 1:
            raise SpecError(f"holds {len(stripped.splitlines())} lines; a spec file is one net: take one, e.g. "
                            f"`head -1 {path} > one.jsonl`")
        return NetSpec.from_json(stripped)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None
    except TypeError as e:  # a value of the wrong type reaching a dataclass
        raise SpecError(f"{path}: {e}") from None
    except RecursionError:
        raise SpecError(f"{path}: {TOO_DEEP}") from None

