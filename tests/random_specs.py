"""Random valid NetSpecs of each branch type, small enough to trace with fvcore in milliseconds.

Written independently of nasx.space on purpose: it reaches corners a design space would not
(odd resolutions, ceil-mode pools, zero-depth stages, mixed branch types, every stem and head).
"""

from __future__ import annotations

import random

from nasx.net.spec import (
    AggregatedBlock,
    Head,
    InceptionBlock,
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
        return PlainBlock(kernel=rng.choice([1, 3, 5]), bn=rng.random() < 0.5, bias=rng.random() < 0.5), width
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
                           c5x5=widths[4], pool_proj=widths[5], kernel_5x5=rng.choice([3, 5]), residual=residual)
    return block, (width if residual else block.w_concat)


def random_spec(rng: random.Random, branch: str | None = None) -> NetSpec:
    """A valid random spec whose stages use `branch` (or a mix of all four when None)."""
    while True:
        stem_kind = rng.choice(["cifar", "cifar", "none", "imagenet", "alexnet", "googlenet"])
        resolution = {"cifar": rng.randint(5, 33), "none": rng.randint(3, 24), "imagenet": rng.randint(17, 64),
                      "alexnet": rng.randint(40, 80), "googlenet": rng.randint(40, 80)}[stem_kind]
        stem = Stem(stem_kind, rng.randint(2, 12), mid_width=rng.randint(2, 8) if stem_kind == "googlenet" and rng.random() < 0.5 else None)
        stages = []
        for _ in range(rng.randint(1, 4)):
            b = branch or rng.choice(["plain", "residual", "aggregated", "inception"])
            block, width = random_block(rng, b, rng.randint(2, 24))
            stride = 1 if b == "inception" else rng.choice([1, 1, 2])
            pool = random_pool(rng) if rng.random() < 0.25 else None
            depth = rng.choice([0, 1, 1, 2, 2, 3]) if rng.random() < 0.9 else 1
            stages.append(Stage(depth=depth, width=width, block=block, stride=stride, pool=pool))
        if rng.random() < 0.3:
            head = Head("classifier", dropout=rng.choice([0.0, 0.5]), pool=random_pool(rng) if rng.random() < 0.5 else None,
                        pool_size=rng.randint(1, 3), hidden=rng.randint(4, 32))
        else:
            head = Head("linear", dropout=rng.choice([0.0, 0.2]), pool=random_pool(rng) if rng.random() < 0.2 else None)
        try:
            return NetSpec(stem=stem, stages=tuple(stages), head=head, in_channels=rng.choice([1, 3]),
                           num_classes=rng.randint(2, 12), resolution=resolution)
        except SpecError:
            continue  # e.g. the resolution collapsed, or zeropad would shrink channels: draw again
