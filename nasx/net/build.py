"""nn.Module from a NetSpec: stem -> s1..sN (blocks b1..bN) -> head.

Every module here has an analytic twin in `nasx.complexity` with the same structure; keep them in
step (tests compare the two against fvcore and `numel` for the zoo and random specs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
    INCEPTION_STEMS,
    inception_stem_layers,
)

__all__ = ["build", "Net"]


# ---------------------------------------------------------------------------------------------
# Layer helpers


def conv2d(w_in: int, w_out: int, k: int | tuple[int, int], *, stride: int = 1, groups: int = 1, bias: bool = False,
           padding: int | tuple[int, int] | None = None) -> nn.Conv2d:
    """k x k (or kh x kw) convolution with 'same' padding (k // 2) unless `padding` is given."""
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=k // 2 if padding is None else padding,
                     groups=groups, bias=bias)


def norm2d(w: int) -> nn.BatchNorm2d:
    """Batch norm over w channels."""
    return nn.BatchNorm2d(w)


def pool2d(pool: Pool) -> nn.MaxPool2d | nn.AvgPool2d:
    """Max- or average pool as the spec says."""
    if pool.kind == "avg":
        return nn.AvgPool2d(pool.kernel, stride=pool.stride, padding=pool.padding, ceil_mode=pool.ceil_mode,
                            count_include_pad=pool.count_include_pad)
    return nn.MaxPool2d(pool.kernel, stride=pool.stride, padding=pool.padding, ceil_mode=pool.ceil_mode)


def lrn2d() -> nn.LocalResponseNorm:
    """Krizhevsky et al.'s local response normalization: n = 5, k = 2, alpha = 1e-4, beta = 0.75.

    torch divides alpha by n (b = a / (k + alpha / n * sum a^2)^beta); the paper does not, so the
    paper's alpha is torch's 5e-4.
    """
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)


class ConvBnRelu(nn.Sequential):
    """Conv, BN, ReLU (GoogLeNet's BasicConv2d)."""

    def __init__(self, w_in: int, w_out: int, k: int | tuple[int, int], *, stride: int = 1,
                 padding: int | tuple[int, int] | None = None):
        super().__init__()
        self.conv = conv2d(w_in, w_out, k, stride=stride, padding=padding)
        self.bn = norm2d(w_out)
        self.relu = nn.ReLU(inplace=True)


# ---------------------------------------------------------------------------------------------
# Stems


def make_stem(stem: Stem, w_in: int) -> nn.Module:
    """The stem named by `stem.kind`."""
    if stem.kind == "imagenet":
        return nn.Sequential(
            _named(conv=conv2d(w_in, stem.width, 7, stride=2), bn=norm2d(stem.width), relu=nn.ReLU(inplace=True),
                   pool=nn.MaxPool2d(3, stride=2, padding=1))
        )
    if stem.kind == "cifar":
        return nn.Sequential(_named(conv=conv2d(w_in, stem.width, 3), bn=norm2d(stem.width), relu=nn.ReLU(inplace=True)))
    if stem.kind == "simple":
        return nn.Sequential(
            _named(conv=conv2d(w_in, stem.width, 3, stride=2), bn=norm2d(stem.width), relu=nn.ReLU(inplace=True))
        )
    if stem.kind == "alexnet":
        return nn.Sequential(
            _named(conv=conv2d(w_in, stem.width, 11, stride=4, padding=2, bias=True), relu=nn.ReLU(inplace=True),
                   **({"lrn": lrn2d()} if stem.lrn else {}), pool=nn.MaxPool2d(3, stride=2))
        )
    if stem.kind == "googlenet":
        w_mid = stem.mid_width or 64
        return nn.Sequential(
            _named(conv1=ConvBnRelu(w_in, w_mid, 7, stride=2), pool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),
                   conv2=ConvBnRelu(w_mid, w_mid, 1), conv3=ConvBnRelu(w_mid, stem.width, 3),
                   pool2=nn.MaxPool2d(3, stride=2, ceil_mode=True))
        )
    if stem.kind in INCEPTION_STEMS:
        return InceptionStem(stem, w_in)
    return nn.Identity()


class InceptionStem(nn.Sequential):
    """An Inception stem (v3, v4, Inception-ResNet-v1): spec.inception_stem_layers as conv1, pool2, mixed4, ... ."""

    def __init__(self, stem: Stem, w_in: int):
        super().__init__()
        for i, layer in enumerate(inception_stem_layers(stem), start=1):
            if isinstance(layer, Conv):
                self.add_module(f"conv{i}", conv_bn_relu(w_in, layer))
                w_in = layer.width
            elif isinstance(layer, Pool):
                self.add_module(f"pool{i}", pool2d(layer))
            else:
                self.add_module(f"mixed{i}", MultiBranchModule(w_in, layer.w_concat(w_in), layer))
                w_in = layer.w_concat(w_in)


def _named(**modules: nn.Module):
    from collections import OrderedDict

    return OrderedDict(modules)


# ---------------------------------------------------------------------------------------------
# Blocks


class PlainLayer(nn.Sequential):
    """k x k conv (groups) (+ BN), ReLU (+ LRN)."""

    def __init__(self, w_in: int, w_out: int, stride: int, block: PlainBlock):
        super().__init__()
        self.conv = conv2d(w_in, w_out, block.kernel, stride=stride, groups=block.groups, bias=block.bias)
        if block.bn:
            self.bn = norm2d(w_out)
        self.relu = nn.ReLU(inplace=True)
        if block.lrn:
            self.lrn = lrn2d()


class BasicTransform(nn.Module):
    """Basic transformation: 3x3, BN, ReLU, 3x3, BN."""

    def __init__(self, w_in: int, w_out: int, stride: int):
        super().__init__()
        self.a = conv2d(w_in, w_out, 3, stride=stride)
        self.a_bn = norm2d(w_out)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = conv2d(w_out, w_out, 3)
        self.b_bn = norm2d(w_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a_relu(self.a_bn(self.a(x)))
        return self.b_bn(self.b(x))


class BottleneckTransform(nn.Module):
    """Bottleneck transformation: 1x1, BN, ReLU, 3x3 (stride, groups), BN, ReLU, 1x1, BN."""

    def __init__(self, w_in: int, w_out: int, stride: int, w_b: int, groups: int = 1):
        super().__init__()
        self.a = conv2d(w_in, w_b, 1)
        self.a_bn = norm2d(w_b)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = conv2d(w_b, w_b, 3, stride=stride, groups=groups)  # stride on the 3x3, as torchvision
        self.b_bn = norm2d(w_b)
        self.b_relu = nn.ReLU(inplace=True)
        self.c = conv2d(w_b, w_out, 1)
        self.c_bn = norm2d(w_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a_relu(self.a_bn(self.a(x)))
        x = self.b_relu(self.b_bn(self.b(x)))
        return self.c_bn(self.c(x))


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: strided identity, channels zero-padded to w_out (no parameters)."""

    def __init__(self, w_in: int, w_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pad_front = (w_out - w_in) // 2
        self.pad_back = w_out - w_in - self.pad_front

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad_front or self.pad_back:
            x = F.pad(x, (0, 0, 0, 0, self.pad_front, self.pad_back))
        return x


class ResBlock(nn.Module):
    """Residual block: x + f(x), projection (1x1 + BN) or zero-pad shortcut when the shape changes, ReLU."""

    def __init__(self, w_in: int, w_out: int, stride: int, f: nn.Module, shortcut: str):
        super().__init__()
        self.f = f  # registered before the projection: parameters in torchvision's order
        self.proj: nn.Module | None = None
        if w_in != w_out or stride != 1:
            if shortcut == "zeropad":
                self.proj = ZeroPadShortcut(w_in, w_out, stride)
            else:
                self.proj = nn.Sequential(_named(conv=conv2d(w_in, w_out, 1, stride=stride), bn=norm2d(w_out)))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.relu(shortcut + self.f(x))


class InceptionModule(nn.Module):
    """Inception: cat(1x1 | 1x1->3x3 | 1x1->kxk | 3x3 pool->1x1) [-> 1x1 + BN, x scale, + shortcut, ReLU]."""

    def __init__(self, w_in: int, w_out: int, block: InceptionBlock):
        super().__init__()
        self.branch1 = ConvBnRelu(w_in, block.c1x1, 1)
        self.branch2 = nn.Sequential(ConvBnRelu(w_in, block.c3x3_reduce, 1), *_tower(block.c3x3_reduce, block.tower_3x3()))
        self.branch3 = nn.Sequential(ConvBnRelu(w_in, block.c5x5_reduce, 1), *_tower(block.c5x5_reduce, block.tower_5x5()))
        pool = (nn.MaxPool2d if block.pool_kind == "max" else nn.AvgPool2d)(3, stride=1, padding=1, ceil_mode=True)
        self.branch4 = nn.Sequential(pool, ConvBnRelu(w_in, block.pool_proj, 1))
        self.residual, self.scale = block.residual, block.scale
        if block.residual:
            self.up = nn.Sequential(_named(conv=conv2d(block.w_concat, w_out, 1), bn=norm2d(w_out)))
            self.proj = None
            if w_in != w_out:
                self.proj = nn.Sequential(_named(conv=conv2d(w_in, w_out, 1), bn=norm2d(w_out)))
            self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)
        if not self.residual:
            return y
        shortcut = x if self.proj is None else self.proj(x)
        y = self.up(y)
        if self.scale != 1.0:
            y = y * self.scale
        return self.relu(shortcut + y)


def _tower(w_in: int, convs: tuple[Conv, ...]) -> list[ConvBnRelu]:
    """Convs in sequence from w_in channels."""
    layers = []
    for conv in convs:
        layers.append(conv_bn_relu(w_in, conv))
        w_in = conv.width
    return layers


def conv_bn_relu(w_in: int, conv: Conv) -> ConvBnRelu:
    """ConvBnRelu as a path's Conv says."""
    return ConvBnRelu(w_in, conv.width, conv.kernel, stride=conv.stride, padding=conv.pad)


class PathModule(nn.Module):
    """One path: [pool], conv1..convN, [split convs on its output, concatenated]."""

    def __init__(self, w_in: int, path: BlockPath):
        super().__init__()
        self.pool = pool2d(path.pool) if path.pool is not None else None
        self.convs = nn.Sequential()
        for i, conv in enumerate(path.convs, start=1):
            self.convs.add_module(f"conv{i}", conv_bn_relu(w_in, conv))
            w_in = conv.width
        self.split = nn.ModuleList(conv_bn_relu(w_in, conv) for conv in path.split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        x = self.convs(x)
        if len(self.split):
            x = torch.cat([conv(x) for conv in self.split], 1)
        return x


class MultiBranchModule(nn.Module):
    """cat(path1 | ... | pathN) [-> 1x1 conv with bias, x scale, + shortcut (1x1 + BN when the width changes), ReLU]."""

    def __init__(self, w_in: int, w_out: int, block: MultiBranchBlock):
        super().__init__()
        self.paths = nn.ModuleList(PathModule(w_in, path) for path in block.paths)
        self.residual, self.scale = block.residual, block.scale
        if block.residual:
            self.proj = conv2d(block.w_concat(w_in), w_out, 1, bias=True)  # linear: no BN, no ReLU (timm's conv2d)
            self.shortcut = None
            if w_in != w_out:
                self.shortcut = nn.Sequential(_named(conv=conv2d(w_in, w_out, 1), bn=norm2d(w_out)))
            self.relu = nn.ReLU(inplace=True) if block.activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([path(x) for path in self.paths], 1)
        if not self.residual:
            return y
        y = self.proj(y)
        if self.scale != 1.0:
            y = y * self.scale
        y = (x if self.shortcut is None else self.shortcut(x)) + y
        return y if self.relu is None else self.relu(y)


def make_block(w_in: int, w_out: int, stride: int, stage: Stage) -> nn.Module:
    """One block of `stage` from w_in to w_out channels."""
    block = stage.block
    if isinstance(block, PlainBlock):
        return PlainLayer(w_in, w_out, stride, block)
    if isinstance(block, ResidualBlock):
        if block.kind == "basic":
            f: nn.Module = BasicTransform(w_in, w_out, stride)
        else:
            f = BottleneckTransform(w_in, w_out, stride, NetSpec.bottleneck_width(stage))
        return ResBlock(w_in, w_out, stride, f, block.shortcut)
    if isinstance(block, AggregatedBlock):
        f = BottleneckTransform(w_in, w_out, stride, block.w_b, groups=block.cardinality)
        return ResBlock(w_in, w_out, stride, f, block.shortcut)
    if isinstance(block, InceptionBlock):
        return InceptionModule(w_in, w_out, block)
    if isinstance(block, MultiBranchBlock):
        return MultiBranchModule(w_in, w_out, block)
    raise TypeError(f"unknown block {block!r}")


class AnyStage(nn.Sequential):
    """[max-pool], then `depth` blocks b1..bN; the first takes the stride and the width change."""

    def __init__(self, w_in: int, stage: Stage):
        super().__init__()
        if stage.pool is not None:
            self.pool = pool2d(stage.pool)
        stride = stage.stride
        for i in range(1, stage.depth + 1):
            self.add_module(f"b{i}", make_block(w_in, stage.width, stride, stage))
            stride, w_in = 1, stage.width


# ---------------------------------------------------------------------------------------------
# Heads


class AuxClassifier(nn.Module):
    """Auxiliary classifier: 5x5/3 avg-pool, 1x1 conv, 5x5 conv (BN, ReLU each), global avg-pool, FC."""

    def __init__(self, w_in: int, num_classes: int, aux: AuxHead):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv0 = ConvBnRelu(w_in, aux.width, 1)
        self.conv1 = ConvBnRelu(aux.width, aux.conv_width, 5, padding=0)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(aux.conv_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(self.pool(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class AuxFcClassifier(nn.Module):
    """Auxiliary classifier (GoogLeNet's): adaptive avg-pool s x s, 1x1 conv (BN, ReLU), FC-hidden, ReLU, dropout, FC."""

    def __init__(self, w_in: int, num_classes: int, aux: AuxHead):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d((aux.pool_size, aux.pool_size))  # torchvision: not the paper's 5x5/3 pool
        self.conv = ConvBnRelu(w_in, aux.width, 1)
        self.fc1 = nn.Linear(aux.width * aux.pool_size * aux.pool_size, aux.hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(aux.dropout)
        self.fc2 = nn.Linear(aux.hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.avgpool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


def make_aux(w_in: int, num_classes: int, aux: AuxHead) -> AuxClassifier | AuxFcClassifier:
    """The auxiliary classifier named by `aux.kind`."""
    return (AuxFcClassifier if aux.kind == "googlenet" else AuxClassifier)(w_in, num_classes, aux)


class LinearHead(nn.Module):
    """[max-pool], global average pool, [dropout], linear."""

    def __init__(self, w_in: int, num_classes: int, head: Head):
        super().__init__()
        self.pool = pool2d(head.pool) if head.pool is not None else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(head.dropout) if head.dropout > 0 else None
        self.fc = nn.Linear(w_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        x = torch.flatten(self.avgpool(x), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)


class ClassifierHead(nn.Module):
    """[max-pool], adaptive avg pool to s x s, FC-hidden, ReLU, dropout, FC-hidden, ReLU, dropout, FC."""

    def __init__(self, w_in: int, num_classes: int, head: Head):
        super().__init__()
        self.pool = pool2d(head.pool) if head.pool is not None else None
        self.avgpool = nn.AdaptiveAvgPool2d((head.pool_size, head.pool_size))
        s2 = head.pool_size * head.pool_size
        self.classifier = nn.Sequential(
            nn.Linear(w_in * s2, head.hidden), nn.ReLU(inplace=True), nn.Dropout(head.dropout),
            nn.Linear(head.hidden, head.hidden), nn.ReLU(inplace=True), nn.Dropout(head.dropout),
            nn.Linear(head.hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        return self.classifier(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------------------------------------
# The net


class Net(nn.Module):
    """stem, s1..sN, head; `spec` is kept on the module for reference."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        self.stem = make_stem(spec.stem, spec.in_channels)
        w_in = spec.stem_width
        for i, stage in enumerate(spec.stages, start=1):
            self.add_module(f"s{i}", AnyStage(w_in, stage))
            if stage.depth > 0:
                w_in = stage.width
            # registered after its stage: Inception-v3's order in torchvision (its GoogLeNet registers aux1
            # and aux2 after inception5b: the reference test moves them to follow 4a and 4d)
            if stage.aux is not None:
                self.add_module(f"aux{i}", make_aux(w_in, spec.num_classes, stage.aux))
        self.aux_logits: list[torch.Tensor] = []  # the auxiliary classifiers' outputs of the last training forward
        head_cls = LinearHead if spec.head.kind == "linear" else ClassifierHead
        self.head = head_cls(w_in, spec.num_classes, spec.head)
        _init_weights(self)
        for m in self.modules():  # one eps and momentum for the whole net, as the spec says
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = spec.bn_eps, spec.bn_momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.aux_logits = []
        for name, module in self.named_children():
            if isinstance(module, (AuxClassifier, AuxFcClassifier)):
                if self.training:  # as torchvision: auxiliary heads only train
                    self.aux_logits.append(module(x))
                continue
            x = module(x)
        return x


def _init_weights(net: nn.Module) -> None:
    """He init (fan_out) for convs, unit BN, N(0, 0.01) for linears: torchvision's choices."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)


def build(spec_or_name: NetSpec | str, num_classes: int | None = None, in_channels: int | None = None) -> Net:
    """A plain nn.Module for a spec or zoo name; num_classes / in_channels override the spec's."""
    from .zoo import resolve

    spec = resolve(spec_or_name)
    changes = {}
    if num_classes is not None:
        changes["num_classes"] = num_classes
    if in_channels is not None:
        changes["in_channels"] = in_channels
    if changes:
        spec = spec.replace(**changes)
    return Net(spec)
