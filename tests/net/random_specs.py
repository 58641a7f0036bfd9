"""Random valid NetSpecs of each branch type, small enough to trace with fvcore in milliseconds.

Written independently of nasx.space on purpose: it reaches corners a design space would not
(odd resolutions, ceil-mode pools, zero-depth stages, mixed branch types, every stem and head).
"""

from __future__ import annotations

import random

from nasx.net.spec import (
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
)


def random_pool(rng: random.Random) -> Pool:
    kernel = rng.choice([2, 3])
    return Pool(kernel=kernel, stride=rng.choice([1, 2]), padding=rng.choice([0, kernel // 2]),
                ceil_mode=rng.random() < 0.5)


def random_block(rng: random.Random, branch: str, width: int) -> tuple[PlainBlock | ResidualBlock | AggregatedBlock | InceptionBlock, int]:
    """A block of `branch` and the stage width that goes with it."""
    if branch == "plain":
        groups = rng.choice([1, 1, 1, 2])  # AlexNet's two GPUs (a stage whose input width is odd is redrawn)
        return PlainBlock(kernel=rng.choice([1, 3, 5]), bn=rng.random() < 0.5, bias=rng.random() < 0.5,
                          groups=groups, lrn=rng.random() < 0.2), width + width % groups
    if branch == "residual":
        kind = rng.choice(["basic", "bottleneck"])
        ratio = rng.choice([0.25, 0.5, 1.0, 2.0, 0.3])
        return ResidualBlock(kind=kind, bottleneck_ratio=ratio, shortcut=rng.choice(["projection", "zeropad"])), width
    if branch == "aggregated":
        cardinality = rng.choice([1, 2, 4, 8])
        width = cardinality * rng.randint(1, 6)
        return AggregatedBlock(cardinality=cardinality, group_width=rng.randint(1, 6),
                               shortcut=rng.choice(["projection", "zeropad"])), width
    widths = [rng.randint(1, 8) for _ in range(6)]
    residual = rng.random() < 0.4
    block = InceptionBlock(c1x1=widths[0], c3x3_reduce=widths[1], c3x3=widths[2], c5x5_reduce=widths[3],
                           c5x5=widths[4], pool_proj=widths[5], kernel_5x5=rng.choice([3, 5]), residual=residual,
                           factorize=rng.choice(["none", "none", "3x3", "asymmetric"]), n=rng.choice([3, 5, 7]),
                           pool_kind=rng.choice(["max", "avg"]),
                           scale=rng.choice([1.0, 0.1, 0.3]) if residual else 1.0)
    return block, (width if residual else block.w_concat)


ODD_KERNELS = [1, 3, 5, (1, 3), (3, 1), (1, 5), (5, 1), (1, 7), (7, 1)]


def random_same_convs(rng: random.Random, n: int) -> tuple[Conv, ...]:
    """n side-keeping convs: odd square or asymmetric kernels, 'same' padding, stride 1."""
    return tuple(Conv(rng.randint(1, 8), rng.choice(ODD_KERNELS)) for _ in range(n))


def random_path(rng: random.Random, geometry: str) -> BlockPath:
    """A path whose convs and pools, whatever they are, end on the side that `geometry` fixes:

    keep (same side), shrink (a 'valid' 3x3, or 1x3 then 3x1, or a 3x3/1 pool without padding),
    shrink_w (a 'valid' 1x3: the map turns oblong), reduce (3x3/2 'valid' conv or pool),
    halve (stride 2 with 'same' padding: a 1x1/2 or 3x3/2 conv, or a 3x3/2 pool with padding 1).
    """
    lead = random_same_convs(rng, rng.choice([0, 0, 1, 2]))
    split = random_same_convs(rng, 2) if rng.random() < 0.2 else ()
    kind = rng.choice(["max", "avg"])
    include_pad = rng.random() < 0.5 if kind == "avg" else True

    def pool(k: int, s: int, p: int) -> Pool:
        return Pool(k, s, p, ceil_mode=False, kind=kind, count_include_pad=include_pad)

    width = rng.randint(1, 8)
    bare_pool = rng.random() < 0.25
    if geometry == "keep":
        if bare_pool:
            return BlockPath(pool=pool(3, 1, 1), convs=random_same_convs(rng, rng.choice([0, 1])))
        return BlockPath(convs=lead or random_same_convs(rng, 1), split=split)
    if geometry == "shrink":
        if bare_pool:
            return BlockPath(pool=pool(3, 1, 0), convs=lead)
        tail = rng.choice([(Conv(width, 3, 1, "valid"),), (Conv(width, (1, 3), 1, "valid"), Conv(width, (3, 1), 1, "valid"))])
        return BlockPath(convs=lead + tail, split=split)
    if geometry == "shrink_w":
        return BlockPath(convs=lead + (Conv(width, (1, 3), 1, "valid"),), split=split)
    if geometry == "reduce":
        if bare_pool:
            return BlockPath(pool=pool(3, 2, 0))
        return BlockPath(convs=lead + (Conv(width, 3, 2, "valid"),), split=split)
    if bare_pool:
        return BlockPath(pool=pool(3, 2, 1), convs=random_same_convs(rng, rng.choice([0, 1])))
    return BlockPath(convs=lead + (Conv(width, rng.choice([1, 3]), 2, "same"),), split=split)


def random_multibranch(rng: random.Random, width: int) -> tuple[MultiBranchBlock, int]:
    """A multi-branch block (plain, reduction, or residual with a scale) and its stage width."""
    residual = rng.random() < 0.35
    geometry = "keep" if residual else rng.choice(["keep", "keep", "shrink", "shrink_w", "reduce", "halve"])
    paths = tuple(random_path(rng, geometry) for _ in range(rng.randint(1, 4)))
    if residual:
        block = MultiBranchBlock(paths=paths, residual=True, scale=rng.choice([1.0, 0.1, 0.17, 0.2, 0.3]),
                                 activation=rng.random() < 0.8)
        return block, width
    return MultiBranchBlock(paths=paths), -1  # the width follows from the input: set by the caller


def random_aux(rng: random.Random) -> AuxHead:
    """Inception-v3's auxiliary classifier or GoogLeNet's, at small widths (Inception-v3's more often:
    a random spec's grid is often too small for its 5x5/3 pool and 5x5 conv, and is then drawn again)."""
    if rng.random() < 0.75:
        return AuxHead(rng.randint(1, 8), rng.randint(1, 8))
    return AuxHead(rng.randint(1, 8), kind="googlenet", pool_size=rng.randint(1, 4), hidden=rng.randint(2, 16),
                   dropout=rng.choice([0.0, 0.7]))


def random_spec(rng: random.Random, branch: str | None = None) -> NetSpec:
    """A valid random spec whose stages use `branch` (or a mix of all four when None)."""
    while True:
        stems = ["cifar", "cifar", "none", "imagenet", "simple", "alexnet", "googlenet"]
        if branch in (None, "multibranch"):
            stems += ["inception_v3", "inception_v4"]
        stem_kind = rng.choice(stems)
        resolution = {"cifar": rng.randint(5, 33), "none": rng.randint(3, 24), "imagenet": rng.randint(17, 64), "simple": rng.randint(9, 48),
                      "alexnet": rng.randint(40, 80), "googlenet": rng.randint(40, 80),
                      "inception_v3": rng.randint(27, 80), "inception_v4": rng.randint(27, 80)}[stem_kind]
        stem_width = rng.randint(193, 200) if stem_kind == "inception_v4" else rng.randint(2, 12)
        stem = Stem(stem_kind, stem_width, mid_width=rng.randint(2, 8) if stem_kind == "googlenet" and rng.random() < 0.5 else None,
                    lrn=stem_kind == "alexnet" and rng.random() < 0.5)
        stages = []
        in_channels = rng.choice([1, 3])
        w_in = in_channels if stem_kind == "none" else stem_width
        for _ in range(rng.randint(1, 4)):
            b = branch or rng.choice(["plain", "residual", "aggregated", "inception", "multibranch"])
            if b == "multibranch":
                block, width = random_multibranch(rng, rng.randint(2, 24))
                depth = rng.choice([1, 1, 2]) if block.residual else 1
                if width < 0:
                    width = block.w_concat(w_in)
            else:
                block, width = random_block(rng, b, rng.randint(2, 24))
                depth = rng.choice([0, 1, 1, 2, 2, 3]) if rng.random() < 0.9 else 1
            stride = 1 if b in ("inception", "multibranch") else rng.choice([1, 1, 2])
            pool = random_pool(rng) if rng.random() < 0.25 else None
            aux = random_aux(rng) if rng.random() < 0.15 else None
            stages.append(Stage(depth=depth, width=width, block=block, stride=stride, pool=pool, aux=aux))
            if depth > 0:
                w_in = width
        if rng.random() < 0.3:
            head = Head("classifier", dropout=rng.choice([0.0, 0.5]), pool=random_pool(rng) if rng.random() < 0.5 else None,
                        pool_size=rng.randint(1, 3), hidden=rng.randint(4, 32))
        else:
            head = Head("linear", dropout=rng.choice([0.0, 0.2]), pool=random_pool(rng) if rng.random() < 0.2 else None)
        try:
            return NetSpec(stem=stem, stages=tuple(stages), head=head, in_channels=in_channels,
                           num_classes=rng.randint(2, 12), resolution=resolution)
        except SpecError:
            continue  # e.g. the resolution collapsed, or zeropad would shrink channels: draw again
