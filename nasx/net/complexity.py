"""Analytic FLOPs / params / activations of a NetSpec, without building it: the twin of `nasx.build`.

Convention (fvcore's default handles, batch 1, eval mode): a conv counts
w_out * (w_in / groups) * k * k * h_out * w_out_px fused multiply-adds, a linear in * out, an eval
BatchNorm 2 * numel(input), an adaptive average pool numel(input); ReLU, max-pool, add, concat and
dropout count 0. Activations are the output elements of every conv and linear (fvcore's
ActivationCountAnalysis). Each function below mirrors the constructor of the module it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import (
    AggregatedBlock,
    AuxHead,
    Conv,
    Head,
    InceptionBlock,
    MultiBranchBlock,
    BlockPath,
    NetSpec,
    PlainBlock,
    Pool,
    ResidualBlock,
    Stage,
    Stem,
    conv_out,
    INCEPTION_STEMS,
    inception_stem_layers,
    pair,
    pool_out,
)

__all__ = ["Complexity", "complexity"]


@dataclass(frozen=True)
class Complexity:
    """Counts for one net at one resolution."""

    flops: int
    params: int
    acts: int
    resolution: int

    def to_dict(self) -> dict[str, int]:
        return {"flops": self.flops, "params": self.params, "acts": self.acts, "resolution": self.resolution}


class Cx:
    """Running totals and the current feature-map sides h x w (square inputs; 'valid' asymmetric
    convs can make the map oblong)."""

    __slots__ = ("h", "w", "flops", "params", "acts")

    def __init__(self, h: int, w: int | None = None):
        self.h, self.w, self.flops, self.params, self.acts = h, h if w is None else w, 0, 0, 0


# ---------------------------------------------------------------------------------------------
# Layer twins


def conv2d_cx(cx: Cx, w_in: int, w_out: int, k: int | tuple[int, int], *, stride: int = 1, groups: int = 1,
              bias: bool = False, padding: int | tuple[int, int] | None = None) -> None:
    """Twin of build.conv2d."""
    (kh, kw) = pair(k)
    (ph, pw) = (kh // 2, kw // 2) if padding is None else pair(padding)
    h, w = conv_out(cx.h, kh, stride, ph), conv_out(cx.w, kw, stride, pw)
    weights = w_out * (w_in // groups) * kh * kw
    cx.flops += weights * h * w
    cx.params += weights + (w_out if bias else 0)
    cx.acts += w_out * h * w
    cx.h, cx.w = h, w


def norm2d_cx(cx: Cx, w: int) -> None:
    """Twin of build.norm2d: 2 flops an element in eval mode, weight and bias."""
    cx.flops += 2 * w * cx.h * cx.w
    cx.params += 2 * w


def pool2d_cx(cx: Cx, pool: Pool) -> None:
    """Twin of build.pool2d: changes the sides only (fvcore counts max_pool2d and avg_pool2d as 0)."""
    cx.h = pool_out(cx.h, pool.kernel, pool.stride, pool.padding, pool.ceil_mode)
    cx.w = pool_out(cx.w, pool.kernel, pool.stride, pool.padding, pool.ceil_mode)


def conv_bn_relu_cx(cx: Cx, w_in: int, w_out: int, k: int | tuple[int, int], *, stride: int = 1,
                    padding: int | tuple[int, int] | None = None) -> None:
    """Twin of build.ConvBnRelu."""
    conv2d_cx(cx, w_in, w_out, k, stride=stride, padding=padding)
    norm2d_cx(cx, w_out)


def linear_cx(cx: Cx, w_in: int, w_out: int) -> None:
    """Twin of nn.Linear with bias."""
    cx.flops += w_in * w_out
    cx.params += w_in * w_out + w_out
    cx.acts += w_out


def adaptive_avgpool_cx(cx: Cx, w: int, size: int) -> None:
    """Twin of nn.AdaptiveAvgPool2d: one flop per input element."""
    cx.flops += w * cx.h * cx.w
    cx.h = cx.w = size


# ---------------------------------------------------------------------------------------------
# Stems


def stem_cx(cx: Cx, stem: Stem, w_in: int) -> None:
    """Twin of build.make_stem."""
    if stem.kind == "imagenet":
        conv2d_cx(cx, w_in, stem.width, 7, stride=2)
        norm2d_cx(cx, stem.width)
        pool2d_cx(cx, Pool(3, 2, 1))
    elif stem.kind == "cifar":
        conv2d_cx(cx, w_in, stem.width, 3)
        norm2d_cx(cx, stem.width)
    elif stem.kind == "simple":
        conv2d_cx(cx, w_in, stem.width, 3, stride=2)
        norm2d_cx(cx, stem.width)
    elif stem.kind == "alexnet":
        conv2d_cx(cx, w_in, stem.width, 11, stride=4, padding=2, bias=True)  # [LRN]: 0 flops, no parameters
        pool2d_cx(cx, Pool(3, 2))
    elif stem.kind == "googlenet":
        w_mid = stem.mid_width or 64
        conv_bn_relu_cx(cx, w_in, w_mid, 7, stride=2)
        pool2d_cx(cx, Pool(3, 2, ceil_mode=True))
        conv_bn_relu_cx(cx, w_mid, w_mid, 1)
        conv_bn_relu_cx(cx, w_mid, stem.width, 3)
        pool2d_cx(cx, Pool(3, 2, ceil_mode=True))
    elif stem.kind in INCEPTION_STEMS:
        inception_stem_cx(cx, stem, w_in)


def inception_stem_cx(cx: Cx, stem: Stem, w_in: int) -> None:
    """Twin of build.InceptionStem."""
    for layer in inception_stem_layers(stem):
        if isinstance(layer, Conv):
            conv_bn_relu_twin_cx(cx, w_in, layer)
            w_in = layer.width
        elif isinstance(layer, Pool):
            pool2d_cx(cx, layer)
        else:
            multibranch_cx(cx, w_in, layer.w_concat(w_in), layer)
            w_in = layer.w_concat(w_in)


# ---------------------------------------------------------------------------------------------
# Blocks


def plain_layer_cx(cx: Cx, w_in: int, w_out: int, stride: int, block: PlainBlock) -> None:
    """Twin of build.PlainLayer (LRN counts 0: fvcore has no handle for its pow / div / avg_pool ops)."""
    conv2d_cx(cx, w_in, w_out, block.kernel, stride=stride, groups=block.groups, bias=block.bias)
    if block.bn:
        norm2d_cx(cx, w_out)


def basic_transform_cx(cx: Cx, w_in: int, w_out: int, stride: int) -> None:
    """Twin of build.BasicTransform."""
    conv2d_cx(cx, w_in, w_out, 3, stride=stride)
    norm2d_cx(cx, w_out)
    conv2d_cx(cx, w_out, w_out, 3)
    norm2d_cx(cx, w_out)


def bottleneck_transform_cx(cx: Cx, w_in: int, w_out: int, stride: int, w_b: int, groups: int = 1) -> None:
    """Twin of build.BottleneckTransform."""
    conv2d_cx(cx, w_in, w_b, 1)
    norm2d_cx(cx, w_b)
    conv2d_cx(cx, w_b, w_b, 3, stride=stride, groups=groups)
    norm2d_cx(cx, w_b)
    conv2d_cx(cx, w_b, w_out, 1)
    norm2d_cx(cx, w_out)


def res_block_cx(cx: Cx, w_in: int, w_out: int, stride: int, shortcut: str, transform) -> None:
    """Twin of build.ResBlock: the projection (if any) sees the block's input side."""
    if (w_in != w_out or stride != 1) and shortcut == "projection":
        h, w = cx.h, cx.w
        conv2d_cx(cx, w_in, w_out, 1, stride=stride)
        norm2d_cx(cx, w_out)
        cx.h, cx.w = h, w
    transform()


def inception_cx(cx: Cx, w_in: int, w_out: int, block: InceptionBlock) -> None:
    """Twin of build.InceptionModule (every branch keeps the side)."""
    conv_bn_relu_cx(cx, w_in, block.c1x1, 1)
    conv_bn_relu_cx(cx, w_in, block.c3x3_reduce, 1)
    tower_cx(cx, block.c3x3_reduce, block.tower_3x3())
    conv_bn_relu_cx(cx, w_in, block.c5x5_reduce, 1)
    tower_cx(cx, block.c5x5_reduce, block.tower_5x5())
    conv_bn_relu_cx(cx, w_in, block.pool_proj, 1)
    if block.residual:
        conv2d_cx(cx, block.w_concat, w_out, 1)
        norm2d_cx(cx, w_out)
        if w_in != w_out:
            conv2d_cx(cx, w_in, w_out, 1)
            norm2d_cx(cx, w_out)


def conv_bn_relu_twin_cx(cx: Cx, w_in: int, conv: Conv) -> None:
    """Twin of build.conv_bn_relu."""
    conv_bn_relu_cx(cx, w_in, conv.width, conv.kernel, stride=conv.stride, padding=conv.pad)


def tower_cx(cx: Cx, w_in: int, convs: tuple[Conv, ...]) -> None:
    """Twin of build._tower."""
    for conv in convs:
        conv_bn_relu_twin_cx(cx, w_in, conv)
        w_in = conv.width


def path_cx(cx: Cx, w_in: int, path: BlockPath) -> None:
    """Twin of build.PathModule."""
    if path.pool is not None:
        pool2d_cx(cx, path.pool)
    for conv in path.convs:
        conv_bn_relu_twin_cx(cx, w_in, conv)
        w_in = conv.width
    h, w = cx.h, cx.w
    for conv in path.split:
        cx.h, cx.w = h, w
        conv_bn_relu_twin_cx(cx, w_in, conv)


def multibranch_cx(cx: Cx, w_in: int, w_out: int, block: MultiBranchBlock) -> None:
    """Twin of build.MultiBranchModule: every path from the input side (they all end on one side)."""
    h, w = cx.h, cx.w
    for path in block.paths:
        cx.h, cx.w = h, w
        path_cx(cx, w_in, path)
    if block.residual:  # the paths keep the side (spec validation)
        conv2d_cx(cx, block.w_concat(w_in), w_out, 1, bias=True)
        if w_in != w_out:
            conv2d_cx(cx, w_in, w_out, 1)
            norm2d_cx(cx, w_out)


def block_cx(cx: Cx, w_in: int, w_out: int, stride: int, stage: Stage) -> None:
    """Twin of build.make_block."""
    block = stage.block
    if isinstance(block, PlainBlock):
        plain_layer_cx(cx, w_in, w_out, stride, block)
    elif isinstance(block, ResidualBlock):
        if block.kind == "basic":
            res_block_cx(cx, w_in, w_out, stride, block.shortcut, lambda: basic_transform_cx(cx, w_in, w_out, stride))
        else:
            w_b = NetSpec.bottleneck_width(stage)
            res_block_cx(cx, w_in, w_out, stride, block.shortcut,
                         lambda: bottleneck_transform_cx(cx, w_in, w_out, stride, w_b))
    elif isinstance(block, AggregatedBlock):
        res_block_cx(cx, w_in, w_out, stride, block.shortcut,
                     lambda: bottleneck_transform_cx(cx, w_in, w_out, stride, block.w_b, block.cardinality))
    elif isinstance(block, InceptionBlock):
        inception_cx(cx, w_in, w_out, block)
    elif isinstance(block, MultiBranchBlock):
        multibranch_cx(cx, w_in, w_out, block)


def stage_cx(cx: Cx, w_in: int, stage: Stage) -> None:
    """Twin of build.AnyStage."""
    if stage.pool is not None:
        pool2d_cx(cx, stage.pool)
    stride = stage.stride
    for _ in range(stage.depth):
        block_cx(cx, w_in, stage.width, stride, stage)
        stride, w_in = 1, stage.width


# ---------------------------------------------------------------------------------------------
# Heads and the net


def aux_classifier_params(w_in: int, num_classes: int, aux: AuxHead) -> int:
    """Twin of build.make_aux (AuxClassifier / AuxFcClassifier), parameters only: it runs in training,
    so eval-mode FLOPs leave it out."""
    side = Cx(5)  # any side: parameters do not depend on it
    if aux.kind == "googlenet":
        conv_bn_relu_cx(side, w_in, aux.width, 1)
        linear_cx(side, aux.width * aux.pool_size * aux.pool_size, aux.hidden)
        linear_cx(side, aux.hidden, num_classes)
    else:
        conv_bn_relu_cx(side, w_in, aux.width, 1)
        conv_bn_relu_cx(side, aux.width, aux.conv_width, 5, padding=0)
        linear_cx(side, aux.conv_width, num_classes)
    return side.params


def head_cx(cx: Cx, w_in: int, num_classes: int, head: Head) -> None:
    """Twin of build.LinearHead / build.ClassifierHead."""
    if head.pool is not None:
        pool2d_cx(cx, head.pool)
    if head.kind == "linear":
        adaptive_avgpool_cx(cx, w_in, 1)
        linear_cx(cx, w_in, num_classes)
    else:
        adaptive_avgpool_cx(cx, w_in, head.pool_size)
        linear_cx(cx, w_in * head.pool_size * head.pool_size, head.hidden)
        linear_cx(cx, head.hidden, head.hidden)
        linear_cx(cx, head.hidden, num_classes)


def complexity(spec_or_name: NetSpec | str, resolution: int | None = None) -> Complexity:
    """FLOPs (fvcore convention), params and activations of a spec or zoo name at `resolution`
    (default: the spec's own), counted analytically."""
    from .zoo import resolve

    spec = resolve(spec_or_name)
    h = spec.resolution if resolution is None else resolution
    if h != spec.resolution:
        spec = spec.replace(resolution=h)  # validates that the net still fits this input
    cx = Cx(h)
    stem_cx(cx, spec.stem, spec.in_channels)
    w_in = spec.stem_width
    for stage in spec.stages:
        stage_cx(cx, w_in, stage)
        if stage.depth > 0:
            w_in = stage.width
        if stage.aux is not None:
            cx.params += aux_classifier_params(w_in, spec.num_classes, stage.aux)
    head_cx(cx, w_in, spec.num_classes, spec.head)
    return Complexity(flops=cx.flops, params=cx.params, acts=cx.acts, resolution=h)
