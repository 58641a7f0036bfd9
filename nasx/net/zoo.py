"""The classic nets as named points of the space (torchvision's ImageNet models, the CIFAR nets of He et al. and Xie et al.)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .fit import InputShape, fit
from .regnet import RegNetParams, regnet_stages
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
    SpecError,
    Stage,
    Stem,
    load_spec,
)

__all__ = ["ZooEntry", "ZOO", "NAMES", "get", "resolve"]


@dataclass(frozen=True)
class ZooEntry:
    """A named net: its spec, where it comes from, and the parameter count its reference publishes."""

    name: str
    make: Callable[[], NetSpec]
    dataset: str  # imagenet | cifar
    reference: str
    published_params: int | None  # torchvision's weights meta, or the paper's (rounded) figure
    note: str = ""


ZOO: dict[str, ZooEntry] = {}


def register(name: str, dataset: str, reference: str, published_params: int | None, note: str = ""):
    """Decorator: add a spec factory to the zoo under `name`."""

    def wrap(fn: Callable[[], NetSpec]) -> Callable[[], NetSpec]:
        ZOO[name] = ZooEntry(name, fn, dataset, reference, published_params, note)
        return fn

    return wrap


def get(name: str) -> NetSpec:
    """The spec of a zoo net."""
    try:
        return ZOO[name].make()
    except KeyError:
        raise SpecError(f"{name!r}: not a zoo net (see `nasx zoo`)") from None


def resolve(spec_or_name: NetSpec | str | Path) -> NetSpec:
    """A NetSpec from itself, a zoo name, or a path to a spec file (.json/.yaml/.jsonl)."""
    if isinstance(spec_or_name, NetSpec):
        return spec_or_name
    if isinstance(spec_or_name, Path):
        return load_spec(spec_or_name)
    if isinstance(spec_or_name, str):
        if spec_or_name in ZOO:
            return get(spec_or_name)
        if Path(spec_or_name).suffix.lower() in (".json", ".yaml", ".yml", ".jsonl"):
            return load_spec(spec_or_name)
        raise SpecError(f"{spec_or_name!r}: not a zoo name (see `nasx zoo`) nor a .json/.yaml spec file")
    raise SpecError(f"expected a NetSpec, zoo name or spec path, got {type(spec_or_name).__name__}")


def fitting(shape: InputShape) -> list[tuple[str, NetSpec]]:
    """(name, spec fitted to `shape`) of the zoo nets made for inputs like it (CIFAR-sized below 100 px, else
    ImageNet), leaving out those whose grid collapses at that input."""
    family = "cifar" if shape.resolution < 100 else "imagenet"
    nets = []
    for name, entry in ZOO.items():
        if entry.dataset != family:
            continue
        try:
            nets.append((name, fit(entry.make(), shape)))
        except SpecError:
            continue  # does not fit this input
    return nets


# ---------------------------------------------------------------------------------------------
# ImageNet: torchvision's models (224 x 224, 1000 classes)

TV = "torchvision.models"


def _imagenet_resnet(depths, block_for_stage, widths) -> NetSpec:
    stages = tuple(
        Stage(depth=d, width=w, block=block_for_stage(i), stride=1 if i == 0 else 2)
        for i, (d, w) in enumerate(zip(depths, widths))
    )
    return NetSpec(stem=Stem("imagenet", 64), stages=stages, head=Head("linear"), num_classes=1000, resolution=224)


def _resnet_basic(depths) -> NetSpec:
    return _imagenet_resnet(depths, lambda i: ResidualBlock(kind="basic"), (64, 128, 256, 512))


def _resnet_bottleneck(depths, bottleneck_ratio: float = 0.25) -> NetSpec:
    block = ResidualBlock(kind="bottleneck", bottleneck_ratio=bottleneck_ratio)
    return _imagenet_resnet(depths, lambda i: block, (256, 512, 1024, 2048))


def _resnext(depths, cardinality: int, group_width: int) -> NetSpec:
    # torchvision doubles the bottleneck width per stage at fixed cardinality: group width doubles
    return _imagenet_resnet(
        depths, lambda i: AggregatedBlock(cardinality=cardinality, group_width=group_width * 2**i), (256, 512, 1024, 2048)
    )


for _name, _depths, _params in [("resnet18", (2, 2, 2, 2), 11_689_512), ("resnet34", (3, 4, 6, 3), 21_797_672)]:
    register(_name, "imagenet", f"{TV}.{_name} (He et al. 2016)", _params)(lambda d=_depths: _resnet_basic(d))
for _name, _depths, _params in [
    ("resnet50", (3, 4, 6, 3), 25_557_032),
    ("resnet101", (3, 4, 23, 3), 44_549_160),
    ("resnet152", (3, 8, 36, 3), 60_192_808),
]:
    register(_name, "imagenet", f"{TV}.{_name} (He et al. 2016, v1.5: stride on the 3x3)", _params)(
        lambda d=_depths: _resnet_bottleneck(d)
    )
for _name, _depths, _card, _gw, _params in [
    ("resnext50_32x4d", (3, 4, 6, 3), 32, 4, 25_028_904),
    ("resnext101_32x8d", (3, 4, 23, 3), 32, 8, 88_791_336),
    ("resnext101_64x4d", (3, 4, 23, 3), 64, 4, 83_455_272),
]:
    register(_name, "imagenet", f"{TV}.{_name} (Xie et al. 2017)", _params)(
        lambda d=_depths, c=_card, g=_gw: _resnext(d, c, g)
    )
for _name, _depths, _params in [("wide_resnet50_2", (3, 4, 6, 3), 68_883_240), ("wide_resnet101_2", (3, 4, 23, 3), 126_886_696)]:
    register(_name, "imagenet", f"{TV}.{_name} (Zagoruyko & Komodakis 2016)", _params)(
        lambda d=_depths: _resnet_bottleneck(d, 0.5)
    )


def _regnet(params: RegNetParams) -> NetSpec:
    """Simple stem 32 (3x3/2), the rule's stages of aggregated blocks (bottleneck ratio 1), each striding 2; avg-pool, FC."""
    return NetSpec(stem=Stem("simple", 32), stages=regnet_stages(params), head=Head("linear"), num_classes=1000,
                   resolution=224)


# torchvision's RegNetX (Radosavovic et al. 2020, pycls's RegNetX-*): d, w_0, w_a, w_m, group width
for _name, _rule, _params in [
    ("regnet_x_400mf", RegNetParams(22, 24, 24.48, 2.54, 16), 5_495_976),
    ("regnet_x_800mf", RegNetParams(16, 56, 35.73, 2.28, 16), 7_259_656),
    ("regnet_x_1_6gf", RegNetParams(18, 80, 34.01, 2.25, 24), 9_190_136),
    ("regnet_x_3_2gf", RegNetParams(25, 88, 26.31, 2.25, 48), 15_296_552),
]:
    register(_name, "imagenet", f"{TV}.{_name} (Radosavovic et al. 2020)", _params,
             note=f"the RegNet rule at d={_rule.depth}, w_0={_rule.w_0}, w_a={_rule.w_a}, w_m={_rule.w_m}, "
                  f"group width {_rule.group_width}")(lambda r=_rule: _regnet(r))


_VGG_DEPTHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_PARAMS = {
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
}


def _vgg(depths, bn: bool) -> NetSpec:
    # torchvision's "M" after each stage = a max-pool before the next stage, and before the head
    halve = Pool(2, 2)
    stages = tuple(
        Stage(depth=d, width=w, block=PlainBlock(kernel=3, bn=bn), pool=None if i == 0 else halve)
        for i, (d, w) in enumerate(zip(depths, (64, 128, 256, 512, 512)))
    )
    head = Head("classifier", dropout=0.5, pool=halve, pool_size=7, hidden=4096)
    return NetSpec(stem=Stem("none", 3), stages=stages, head=head, num_classes=1000, resolution=224)


for _base, _depths in _VGG_DEPTHS.items():
    for _bn in (False, True):
        _name = _base + ("_bn" if _bn else "")
        register(_name, "imagenet", f"{TV}.{_name} (Simonyan & Zisserman 2015)", _VGG_PARAMS[_name])(
            lambda d=_depths, b=_bn: _vgg(d, b)
        )


@register("alexnet", "imagenet", f"{TV}.alexnet (Krizhevsky 2014, one-GPU variant)", 61_100_840)
def alexnet() -> NetSpec:
    """11x11/4 conv 64, pool, 5x5 conv 192, pool, 3x3 convs 384, 256, 256, pool, classifier 6x6."""
    pool = Pool(3, 2)
    stages = (
        Stage(depth=1, width=192, block=PlainBlock(kernel=5)),
        Stage(depth=1, width=384, block=PlainBlock(kernel=3), pool=pool),
        Stage(depth=2, width=256, block=PlainBlock(kernel=3)),
    )
    head = Head("classifier", dropout=0.5, pool=pool, pool_size=6, hidden=4096)
    return NetSpec(stem=Stem("alexnet", 64), stages=stages, head=head, num_classes=1000, resolution=224)


@register("alexnet_paper", "imagenet", "Krizhevsky et al. 2012, Fig. 2 (two GPUs, LRN)", 60_965_224,
          note="conv2, conv4, conv5 in two groups (one per GPU); LRN after conv1 and conv2; 224 px with padding 2 = 227 px without")
def alexnet_paper() -> NetSpec:
    """11x11/4 conv 96, LRN, pool, 5x5 conv 256 (2 groups), LRN, pool, 3x3 convs 384, 384 (2 groups), 256 (2 groups), pool, classifier 6x6."""
    pool = Pool(3, 2)
    stages = (
        Stage(depth=1, width=256, block=PlainBlock(kernel=5, groups=2, lrn=True)),
        Stage(depth=1, width=384, block=PlainBlock(kernel=3), pool=pool),  # conv3 sees both GPUs' maps
        Stage(depth=1, width=384, block=PlainBlock(kernel=3, groups=2)),
        Stage(depth=1, width=256, block=PlainBlock(kernel=3, groups=2)),
    )
    head = Head("classifier", dropout=0.5, pool=pool, pool_size=6, hidden=4096)
    return NetSpec(stem=Stem("alexnet", 96, lrn=True), stages=stages, head=head, num_classes=1000, resolution=224)


# VGG's Table 1 configurations A-LRN and C, which torchvision does not build (Table 2: 133M and 134M)
@register("vgg11_lrn", "imagenet", "Simonyan & Zisserman 2015, Table 1 config A-LRN", 132_863_336,
          note="config A with LRN after its first conv; the same parameters as A (vgg11)")
def vgg11_lrn() -> NetSpec:
    """vgg11 (config A) with Krizhevsky's LRN after the first conv."""
    spec = _vgg(_VGG_DEPTHS["vgg11"], bn=False)
    first = spec.stages[0]
    return spec.replace(stages=(Stage(first.depth, first.width, PlainBlock(kernel=3, lrn=True)),) + spec.stages[1:])


@register("vgg16_c", "imagenet", "Simonyan & Zisserman 2015, Table 1 config C", 133_638_952,
          note="vgg16 (config D) with a 1x1 conv as the third conv of stages 3-5: 138,357,544 - 3 x 8 x w^2")
def vgg16_c() -> NetSpec:
    """Config C: conv3 64 x2, conv3 128 x2, then per stage 3-5 conv3 x2 and a conv1, each stage after a 2x2 max-pool; classifier."""
    halve = Pool(2, 2)
    stages = [Stage(2, 64, PlainBlock(kernel=3)), Stage(2, 128, PlainBlock(kernel=3), pool=halve)]
    for width in (256, 512, 512):
        stages += [Stage(2, width, PlainBlock(kernel=3), pool=halve), Stage(1, width, PlainBlock(kernel=1))]
    head = Head("classifier", dropout=0.5, pool=halve, pool_size=7, hidden=4096)
    return NetSpec(stem=Stem("none", 3), stages=tuple(stages), head=head, num_classes=1000, resolution=224)


# GoogLeNet's modules as in torchvision (and Szegedy et al. 2015, Table 1):
# (c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj), and the max-pool before each module
_GOOGLENET = [
    ("3a", (64, 96, 128, 16, 32, 32), None),
    ("3b", (128, 128, 192, 32, 96, 64), None),
    ("4a", (192, 96, 208, 16, 48, 64), Pool(3, 2, ceil_mode=True)),
    ("4b", (160, 112, 224, 24, 64, 64), None),
    ("4c", (128, 128, 256, 24, 64, 64), None),
    ("4d", (112, 144, 288, 32, 64, 64), None),
    ("4e", (256, 160, 320, 32, 128, 128), None),
    ("5a", (256, 160, 320, 32, 128, 128), Pool(2, 2, ceil_mode=True)),
    ("5b", (384, 192, 384, 48, 128, 128), None),
]


def _googlenet(kernel_5x5: int, aux: bool = False) -> NetSpec:
    """One stage per Inception module (3a ... 5b) [auxiliary classifiers after 4a and 4d], avg-pool, dropout 0.2, FC."""
    stages = []
    for name, widths, pool in _GOOGLENET:
        block = InceptionBlock(
            c1x1=widths[0], c3x3_reduce=widths[1], c3x3=widths[2], c5x5_reduce=widths[3], c5x5=widths[4],
            pool_proj=widths[5], kernel_5x5=kernel_5x5,
        )
        # torchvision's aux1 / aux2: 1x1 128, FC 1024, dropout 0.7, on the 14x14 outputs of 4a and 4d
        aux_head = AuxHead(128, kind="googlenet", pool_size=4, hidden=1024, dropout=0.7) if aux and name in ("4a", "4d") else None
        stages.append(Stage(depth=1, width=block.w_concat, block=block, pool=pool, aux=aux_head))
    return NetSpec(stem=Stem("googlenet", 192, mid_width=64), stages=tuple(stages), head=Head("linear", dropout=0.2),
                   num_classes=1000, resolution=224, bn_eps=1e-3)  # torchvision's BasicConv2d: eps 0.001


register(
    "googlenet", "imagenet", f"{TV}.googlenet (Szegedy et al. 2015), aux heads off", 6_624_904,
    note="torchvision's: a 3x3 conv in the '5x5' branch, BN after every conv",
)(lambda: _googlenet(3))
register(
    "googlenet_paper", "imagenet", "Szegedy et al. 2015, Table 1", None,
    note="the paper's 5x5 conv in the third branch; otherwise as torchvision (BN, no LRN, no aux heads)",
)(lambda: _googlenet(5))
register(
    "googlenet_aux", "imagenet", f"{TV}.googlenet (Szegedy et al. 2015), aux heads on", 13_004_888,
    note="torchvision's weights meta says 6,624,904 without the aux heads (+ 3,188,968 + 3,191,016); they run in "
         "training only: their parameters count, the eval FLOPs do not include them",
)(lambda: _googlenet(3, aux=True))


# ---------------------------------------------------------------------------------------------
# The Inception family after GoogLeNet: torchvision's Inception-v3, timm's Inception-v4 and
# Inception-ResNet-v2 (299 x 299, 1000 classes, BN eps 1e-3). Convs are 'same' unless marked V.

V = "valid"
MAX_3_2 = Pool(3, 2)  # the parameter-free path of every reduction module
AVG_TV = Pool(3, 1, 1, kind="avg")  # torchvision: F.avg_pool2d(x, 3, 1, 1), padding counted
AVG_TIMM = Pool(3, 1, 1, kind="avg", count_include_pad=False)  # timm: nn.AvgPool2d(3, 1, 1, count_include_pad=False)


def _path(*convs: Conv, pool: Pool | None = None, split: tuple[Conv, ...] = ()) -> BlockPath:
    return BlockPath(convs=convs, pool=pool, split=split)


def _mb(*paths: BlockPath, **residual) -> MultiBranchBlock:
    return MultiBranchBlock(paths=paths, **residual)


def _v3_a(pool_features: int) -> MultiBranchBlock:
    """Inception-A (35x35): 1x1 64 | 1x1 48, 5x5 64 | 1x1 64, 3x3 96, 3x3 96 | avg-pool, 1x1 pool_features; concat."""
    return _mb(_path(Conv(64)), _path(Conv(48), Conv(64, 5)), _path(Conv(64), Conv(96, 3), Conv(96, 3)),
               _path(Conv(pool_features), pool=AVG_TV))


def _v3_b() -> MultiBranchBlock:
    """Reduction (35 -> 17): 3x3/2 384 V | 1x1 64, 3x3 96, 3x3/2 96 V | 3x3/2 max-pool; concat."""
    return _mb(_path(Conv(384, 3, 2, V)), _path(Conv(64), Conv(96, 3), Conv(96, 3, 2, V)), _path(pool=MAX_3_2))


def _v3_c(c7: int) -> MultiBranchBlock:
    """Inception-C (17x17): 1x1 192 | 1x1 c7, 1x7 c7, 7x1 192 | 1x1 c7, 7x1 c7, 1x7 c7, 7x1 c7, 1x7 192 | avg-pool, 1x1 192; concat."""
    return _mb(
        _path(Conv(192)),
        _path(Conv(c7), Conv(c7, (1, 7)), Conv(192, (7, 1))),
        _path(Conv(c7), Conv(c7, (7, 1)), Conv(c7, (1, 7)), Conv(c7, (7, 1)), Conv(192, (1, 7))),
        _path(Conv(192), pool=AVG_TV),
    )


def _v3_d() -> MultiBranchBlock:
    """Reduction (17 -> 8): 1x1 192, 3x3/2 320 V | 1x1 192, 1x7 192, 7x1 192, 3x3/2 192 V | 3x3/2 max-pool; concat."""
    return _mb(_path(Conv(192), Conv(320, 3, 2, V)),
               _path(Conv(192), Conv(192, (1, 7)), Conv(192, (7, 1)), Conv(192, 3, 2, V)), _path(pool=MAX_3_2))


def _v3_e() -> MultiBranchBlock:
    """Inception-E (8x8): 1x1 320 | 1x1 384, 1x3 384 + 3x1 384 | 1x1 448, 3x3 384, 1x3 384 + 3x1 384 | avg-pool, 1x1 192; concat."""
    split = (Conv(384, (1, 3)), Conv(384, (3, 1)))
    return _mb(_path(Conv(320)), _path(Conv(384), split=split), _path(Conv(448), Conv(384, 3), split=split),
               _path(Conv(192), pool=AVG_TV))


def _stages(w_in: int, *modules: tuple[int, MultiBranchBlock]) -> tuple[Stage, ...]:
    """(depth, block) pairs as stages, each as wide as its block's output."""
    stages = []
    for depth, block in modules:
        stages.append(Stage(depth=depth, width=block.w_concat(w_in), block=block))
        w_in = stages[-1].width
    return tuple(stages)


def _inception_v3(aux: bool) -> NetSpec:
    """Stem, Mixed 5b-5d (A), 6a (reduction), 6b-6e (C) [auxiliary classifier], 7a (reduction), 7b-7c (E), avg-pool, dropout 0.5, FC."""
    stages = list(_stages(192, (1, _v3_a(32)), (2, _v3_a(64)), (1, _v3_b()), (1, _v3_c(128)), (2, _v3_c(160)),
                          (1, _v3_c(192)), (1, _v3_d()), (2, _v3_e())))
    if aux:  # torchvision's AuxLogits, on Mixed-6e's 17x17 output
        stages[5] = Stage(stages[5].depth, stages[5].width, stages[5].block, aux=AuxHead(128, 768))
    return NetSpec(stem=Stem("inception_v3", 192), stages=tuple(stages), head=Head("linear", dropout=0.5),
                   num_classes=1000, resolution=299, bn_eps=1e-3)


register("inception_v3", "imagenet", f"{TV}.inception_v3 (Szegedy et al. 2016), aux head off", 23_834_568,
         note="torchvision's weights meta says 27,161,264: it counts the auxiliary classifier")(lambda: _inception_v3(False))
register("inception_v3_aux", "imagenet", f"{TV}.inception_v3 (Szegedy et al. 2016), aux head on", 27_161_264,
         note="the auxiliary classifier runs in training only: its parameters count, the eval FLOPs do not include it")(
    lambda: _inception_v3(True))


def _v4_a() -> MultiBranchBlock:
    """Inception-A (35x35): 1x1 96 | 1x1 64, 3x3 96 | 1x1 64, 3x3 96, 3x3 96 | avg-pool, 1x1 96; concat."""
    return _mb(_path(Conv(96)), _path(Conv(64), Conv(96, 3)), _path(Conv(64), Conv(96, 3), Conv(96, 3)),
               _path(Conv(96), pool=AVG_TIMM))


def _reduction_a(k: int, l: int, m: int, n: int) -> MultiBranchBlock:  # noqa: E741 (the paper's letters)
    """Reduction-A (Fig. 7, 35 -> 17): 3x3/2 n V | 1x1 k, 3x3 l, 3x3/2 m V | max-pool; concat (Table 1 gives k, l, m, n per net)."""
    return _mb(_path(Conv(n, 3, 2, V)), _path(Conv(k), Conv(l, 3), Conv(m, 3, 2, V)), _path(pool=MAX_3_2))


def _v4_b() -> MultiBranchBlock:
    """Inception-B (17x17): 1x1 384 | 1x1 192, 1x7 224, 7x1 256 | 1x1 192, 7x1 192, 1x7 224, 7x1 224, 1x7 256 | avg-pool, 1x1 128; concat."""
    return _mb(
        _path(Conv(384)),
        _path(Conv(192), Conv(224, (1, 7)), Conv(256, (7, 1))),
        _path(Conv(192), Conv(192, (7, 1)), Conv(224, (1, 7)), Conv(224, (7, 1)), Conv(256, (1, 7))),
        _path(Conv(128), pool=AVG_TIMM),
    )


def _v4_reduction_b() -> MultiBranchBlock:
    """Reduction-B (17 -> 8): 1x1 192, 3x3/2 192 V | 1x1 256, 1x7 256, 7x1 320, 3x3/2 320 V | max-pool; concat."""
    return _mb(_path(Conv(192), Conv(192, 3, 2, V)),
               _path(Conv(256), Conv(256, (1, 7)), Conv(320, (7, 1)), Conv(320, 3, 2, V)), _path(pool=MAX_3_2))


def _v4_c() -> MultiBranchBlock:
    """Inception-C (8x8): 1x1 256 | 1x1 384, 1x3 256 + 3x1 256 | 1x1 384, 3x1 448, 1x3 512, 1x3 256 + 3x1 256 | avg-pool, 1x1 256; concat."""
    split = (Conv(256, (1, 3)), Conv(256, (3, 1)))
    return _mb(_path(Conv(256)), _path(Conv(384), split=split),
               _path(Conv(384), Conv(448, (3, 1)), Conv(512, (1, 3)), split=split), _path(Conv(256), pool=AVG_TIMM))


@register("inception_v4", "imagenet", "timm inception_v4 (Szegedy et al. 2017, Fig. 9)", 42_679_816)
def inception_v4() -> NetSpec:
    """v4 stem, 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C, avg-pool, FC."""
    stages = _stages(384, (4, _v4_a()), (1, _reduction_a(192, 224, 256, 384)), (7, _v4_b()), (1, _v4_reduction_b()),
                     (3, _v4_c()))
    return NetSpec(stem=Stem("inception_v4", 384), stages=stages, head=Head("linear"), num_classes=1000,
                   resolution=299, bn_eps=1e-3)


# Inception-ResNet-v1 as Szegedy et al. 2017 draw it (Figs. 7, 10-15, Table 1); no torchvision or timm
# model to check against: tests/net/test_zoo.py derives its parameter count layer by layer. Where the
# paper leaves a choice open, the choice taken (and why):
# - the "Linear" 1x1 conv before each sum has a bias and no BN ("batch-normalization only on top of
#   the traditional layers, but not on top of the summations", Sec. 3.3): MultiBranchBlock's residual
#   form, as in timm's v2 and the TF-slim / facenet implementations of v1 (slim adds a bias when a conv
#   has no normalizer);
# - the residual scales: Sec. 3.3 picks "some scaling factors between 0.1 and 0.3" without naming them;
#   taken here as 0.17 (A), 0.10 (B), 0.20 (C), the values of the TF-slim v2 and of facenet's v1;
# - Fig. 15 puts average pooling right after 5 x Inception-ResNet-C, so the net ends on 8x8x1792 with a
#   ReLU after every block (facenet's v1 adds a sixth C block without ReLU, as v2 does; not the paper's);
# - the order of each concatenation (pool path last, as the v2 and facenet code) changes no count;
# - BN eps 1e-3 as the TF-slim code; momentum left at torch's default, as for the v2 here.


def _irv1_block35(scale: float) -> MultiBranchBlock:
    """Inception-ResNet-A (Fig. 10; 35x35, 256): 1x1 32 | 1x1 32, 3x3 32 | 1x1 32, 3x3 32, 3x3 32; concat, 1x1 256, x scale, + x, ReLU."""
    return _mb(_path(Conv(32)), _path(Conv(32), Conv(32, 3)), _path(Conv(32), Conv(32, 3), Conv(32, 3)),
               residual=True, scale=scale)


def _irv1_block17(scale: float) -> MultiBranchBlock:
    """Inception-ResNet-B (Fig. 11; 17x17, 896): 1x1 128 | 1x1 128, 1x7 128, 7x1 128; concat, 1x1 896, x scale, + x, ReLU."""
    return _mb(_path(Conv(128)), _path(Conv(128), Conv(128, (1, 7)), Conv(128, (7, 1))), residual=True, scale=scale)


def _irv1_block8(scale: float) -> MultiBranchBlock:
    """Inception-ResNet-C (Fig. 13; 8x8, 1792): 1x1 192 | 1x1 192, 1x3 192, 3x1 192; concat, 1x1 1792, x scale, + x, ReLU."""
    return _mb(_path(Conv(192)), _path(Conv(192), Conv(192, (1, 3)), Conv(192, (3, 1))), residual=True, scale=scale)


def _irv1_reduction_b() -> MultiBranchBlock:
    """Reduction-B (Fig. 12; 17 -> 8, 896 -> 1792): 1x1 256, 3x3/2 384 V | 1x1 256, 3x3/2 256 V | 1x1 256, 3x3 256, 3x3/2 256 V | max-pool; concat."""
    return _mb(_path(Conv(256), Conv(384, 3, 2, V)), _path(Conv(256), Conv(256, 3, 2, V)),
               _path(Conv(256), Conv(256, 3), Conv(256, 3, 2, V)), _path(pool=MAX_3_2))


@register("inception_resnet_v1", "imagenet", "Szegedy et al. 2017, Figs. 10-15 (no library reference)", None,
          note="parameters derived layer by layer in tests/net/test_zoo.py; residual scales 0.17 / 0.1 / 0.2 (the paper: "
               "0.1-0.3); the linear 1x1 convs before the sums have a bias")
def inception_resnet_v1() -> NetSpec:
    """Fig. 14 stem (35x35x256), 5 x A, Reduction-A (k, l, m, n = 192, 192, 256, 384), 10 x B, Reduction-B, 5 x C, avg-pool, dropout 0.2, FC."""
    stages = (
        Stage(5, 256, _irv1_block35(0.17)),
        Stage(1, 896, _reduction_a(192, 192, 256, 384)),  # 384 + 256 + 256 (the pool passes 256)
        Stage(10, 896, _irv1_block17(0.10)),
        Stage(1, 1792, _irv1_reduction_b()),  # 384 + 256 + 256 + 896
        Stage(5, 1792, _irv1_block8(0.20)),
    )
    return NetSpec(stem=Stem("inception_resnet_v1", 256), stages=stages, head=Head("linear", dropout=0.2),
                   num_classes=1000, resolution=299, bn_eps=1e-3)  # dropout 0.2: the paper's keep 0.8


def _irv2_block35(scale: float) -> MultiBranchBlock:
    """Inception-ResNet-A (35x35, 320): 1x1 32 | 1x1 32, 3x3 32 | 1x1 32, 3x3 48, 3x3 64; concat, 1x1 320, x scale, + x, ReLU."""
    return _mb(_path(Conv(32)), _path(Conv(32), Conv(32, 3)), _path(Conv(32), Conv(48, 3), Conv(64, 3)),
               residual=True, scale=scale)


def _irv2_block17(scale: float) -> MultiBranchBlock:
    """Inception-ResNet-B (17x17, 1088): 1x1 192 | 1x1 128, 1x7 160, 7x1 192; concat, 1x1 1088, x scale, + x, ReLU."""
    return _mb(_path(Conv(192)), _path(Conv(128), Conv(160, (1, 7)), Conv(192, (7, 1))), residual=True, scale=scale)


def _irv2_block8(scale: float, activation: bool = True) -> MultiBranchBlock:
    """Inception-ResNet-C (8x8, 2080): 1x1 192 | 1x1 192, 1x3 224, 3x1 256; concat, 1x1 2080, x scale, + x, [ReLU]."""
    return _mb(_path(Conv(192)), _path(Conv(192), Conv(224, (1, 3)), Conv(256, (3, 1))), residual=True, scale=scale,
               activation=activation)


@register("inception_resnet_v2", "imagenet", "timm inception_resnet_v2 (Szegedy et al. 2017, Fig. 15)", 55_843_464)
def inception_resnet_v2() -> NetSpec:
    """v3 stem, Mixed-5b, 10 x block35 (0.17), Mixed-6a, 20 x block17 (0.1), Mixed-7a, 9 x block8 (0.2), block8 (no ReLU), 1x1 1536, avg-pool, FC."""
    mixed_5b = _mb(_path(Conv(96)), _path(Conv(48), Conv(64, 5)), _path(Conv(64), Conv(96, 3), Conv(96, 3)),
                   _path(Conv(64), pool=AVG_TIMM))
    mixed_6a = _reduction_a(256, 256, 384, 384)
    mixed_7a = _mb(_path(Conv(256), Conv(384, 3, 2, V)), _path(Conv(256), Conv(288, 3, 2, V)),
                   _path(Conv(256), Conv(288, 3), Conv(320, 3, 2, V)), _path(pool=MAX_3_2))
    stages = (
        Stage(1, 320, mixed_5b), Stage(10, 320, _irv2_block35(0.17)),
        Stage(1, 1088, mixed_6a), Stage(20, 1088, _irv2_block17(0.10)),
        Stage(1, 2080, mixed_7a), Stage(9, 2080, _irv2_block8(0.20)), Stage(1, 2080, _irv2_block8(1.0, activation=False)),
        Stage(1, 1536, PlainBlock(kernel=1, bn=True, bias=False)),  # conv2d_7b
    )
    return NetSpec(stem=Stem("inception_v3", 192), stages=stages, head=Head("linear"), num_classes=1000,
                   resolution=299, bn_eps=1e-3)


# ---------------------------------------------------------------------------------------------
# CIFAR (32 x 32, 10 classes)


def _cifar_resnet(n: int) -> NetSpec:
    block = ResidualBlock(kind="basic", shortcut="zeropad")  # option A, as in the paper's CIFAR nets
    stages = tuple(Stage(depth=n, width=w, block=block, stride=s) for w, s in ((16, 1), (32, 2), (64, 2)))
    return NetSpec(stem=Stem("cifar", 16), stages=stages, head=Head("linear"), num_classes=10, resolution=32)


# He et al. 2016, Table 6: 0.27M / 0.46M / 0.66M / 0.85M / 1.7M
for _n, _paper in [(3, 270_000), (5, 460_000), (7, 660_000), (9, 850_000), (18, 1_700_000)]:
    register(f"resnet{6 * _n + 2}", "cifar", "He et al. 2016, Sec. 4.2 (option A shortcuts)", _paper)(
        lambda n=_n: _cifar_resnet(n)
    )


def _resnext29(cardinality: int, group_width: int) -> NetSpec:
    # Xie et al. 2017, Sec. 5.3: 3x3 conv 64, then 3 stages of 3 bottleneck blocks with outputs
    # 256/512/1024; the bottleneck width (cardinality x group width) doubles with the stage
    stages = tuple(
        Stage(depth=3, width=w, block=AggregatedBlock(cardinality=cardinality, group_width=group_width * 2**i),
              stride=1 if i == 0 else 2)
        for i, w in enumerate((256, 512, 1024))
    )
    return NetSpec(stem=Stem("cifar", 64), stages=stages, head=Head("linear"), num_classes=10, resolution=32)


register("resnext29_8x64d", "cifar", "Xie et al. 2017, Table 7", 34_400_000)(lambda: _resnext29(8, 64))
register("resnext29_16x64d", "cifar", "Xie et al. 2017, Table 7", 68_100_000)(lambda: _resnext29(16, 64))

NAMES: tuple[str, ...] = tuple(ZOO)
