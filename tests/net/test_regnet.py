"""The RegNet rule (nasx.net.regnet): torchvision's four RegNetX layouts, its quantization steps, and its inverse."""

from __future__ import annotations

import random

import pytest

import nasx
from nasx.net.regnet import RegNetParams, RuleStage, make_divisible, regnet_stages, regnet_widths, rule_parameters
from nasx.net.spec import AggregatedBlock, SpecError

# per stage (depth, width, group width) as torchvision 0.29.1's BlockParams.from_init_params gives them for its
# regnet_x_* parameters (tests/net/test_torchvision_reference.py compares the two live)
TORCHVISION_STAGES = {
    "regnet_x_400mf": ((22, 24, 24.48, 2.54, 16), ((1, 32, 16), (2, 64, 16), (7, 160, 16), (12, 400, 16))),
    "regnet_x_800mf": ((16, 56, 35.73, 2.28, 16), ((1, 64, 16), (3, 128, 16), (7, 288, 16), (5, 672, 16))),
    "regnet_x_1_6gf": ((18, 80, 34.01, 2.25, 24), ((2, 72, 24), (4, 168, 24), (10, 408, 24), (2, 912, 24))),
    "regnet_x_3_2gf": ((25, 88, 26.31, 2.25, 48), ((2, 96, 48), (6, 192, 48), (15, 432, 48), (2, 1008, 48))),
}
RANGES = dict(group_widths=(1, 2, 4, 8, 16, 24, 32, 48, 64), w_0=lambda w: 8 <= w <= 256,
              w_a=[(0.0, 256.0)], w_m=[(1.5, 3.0)])


@pytest.mark.parametrize("name", list(TORCHVISION_STAGES))
def test_rule_gives_torchvision_regnetx_layouts(name):
    params, stages = TORCHVISION_STAGES[name]
    assert regnet_widths(*params) == tuple(RuleStage(*s) for s in stages)
    spec = nasx.zoo.get(name)
    assert spec.stem == nasx.Stem("simple", 32) and spec.resolution == 224 and spec.num_classes == 1000
    assert [(s.depth, s.width, s.block.group_width) for s in spec.stages] == list(stages)
    for s in spec.stages:  # bottleneck ratio 1: w_b = width, cardinality = width / group width
        assert isinstance(s.block, AggregatedBlock) and s.block.w_b == s.width and s.stride == 2
        assert s.pool is None and s.block.shortcut == "projection"


def test_group_width_adjustment_is_torchvisions_make_divisible():
    assert make_divisible(24, 16) == 32  # regnet_x_400mf's first stage: 24 -> 32
    assert make_divisible(152, 16) == 160 and make_divisible(392, 16) == 400
    assert make_divisible(56, 48) == 96  # rounding down to 48 would lose over 10%
    assert make_divisible(4, 8) == 8  # never below the divisor
    # a group width above the bottleneck width is cut to it: one group, no adjustment
    assert regnet_widths(1, 8, 0.0, 2.0, 64) == (RuleStage(1, 8, 8),)


def test_whole_means_every_power_of_w_m_is_a_stage():
    assert all(RegNetParams(*p).whole() for p, _ in TORCHVISION_STAGES.values())
    skip = RegNetParams(2, 8, 256.0, 1.5, 8)  # block 1: 33 x w_0, k = 9
    assert skip.exponents() == (0, 9) and len(skip.stages()) == 2 and not skip.whole()
    merge = RegNetParams(3, 8, 4.0, 1.5, 8)  # k = 0, 1, 2: widths 8, 12 -> 16, 18 -> 16
    assert merge.exponents() == (0, 1, 2) and [s.width for s in merge.stages()] == [8, 16] and not merge.whole()


@pytest.mark.parametrize("params, message", [
    ((22, 12, 24.48, 2.54, 16), "w_0: 12 must be a positive multiple of 8"),
    ((22, 24, -1.0, 2.54, 16), "w_a: -1.0 must be >= 0"),
    ((22, 24, 24.48, 1.0, 16), "w_m: 1.0 must be > 1"),
    ((0, 24, 24.48, 2.54, 16), "depth: 0 must be an integer >= 1"),
    ((22, 24, 24.48, 2.54, 0), "group_width: 0 must be an integer >= 1"),
])
def test_impossible_parameters_raise_one_line(params, message):
    with pytest.raises(SpecError, match=message):
        regnet_widths(*params)


def test_stages_stride_per_position_and_group_like_torchvision():
    params = RegNetParams(*TORCHVISION_STAGES["regnet_x_400mf"][0])
    stages = regnet_stages(params, strides=(1, 2))
    assert [s.stride for s in stages] == [1, 2, 2, 2]
    assert [s.block.cardinality for s in stages] == [2, 4, 10, 25]  # torchvision: groups = w_b // group width
    half = RegNetParams(4, 32, 32.0, 2.0, 8, bottleneck_ratio=0.5)
    assert [(s.width, s.block.w_b) for s in regnet_stages(half)] == [(s.width, s.width // 2) for s in half.stages()]


def test_inverse_finds_parameters_for_every_rule_output():
    rng, found = random.Random(0), 0
    while found < 300:
        params = RegNetParams(rng.randint(1, 28), 8 * rng.randint(1, 32), rng.uniform(0, 256), rng.uniform(1.5, 3),
                              rng.choice(RANGES["group_widths"]), rng.choice([1.0, 1.0, 0.5, 0.25]))
        if not params.whole():
            continue  # the inverse looks for whole layouts only
        again = rule_parameters(params.stages(), bottleneck_ratio=params.bottleneck_ratio, **RANGES)
        assert again is not None, params
        assert again.stages() == params.stages() and again.whole() and again.depth == params.depth
        assert 8 <= again.w_0 <= 256 and 0 <= again.w_a <= 256 and 1.5 <= again.w_m <= 3
        found += 1


def test_inverse_rejects_layouts_the_rule_cannot_give():
    stages = tuple(RuleStage(*s) for s in TORCHVISION_STAGES["regnet_x_400mf"][1])
    assert rule_parameters(stages, **RANGES).w_0 == 24
    # 12 blocks at k = 0 need 1 + 11 r < w_m^0.5, a 4th stage from block 21 on needs 1 + 21 r >= w_m^2.5
    reversed_depths = tuple(RuleStage(d, s.width, s.group_width) for d, s in zip((12, 7, 2, 1), stages))
    assert rule_parameters(reversed_depths, **RANGES) is None
    mixed_groups = stages[:1] + (RuleStage(2, 64, 8),) + stages[2:]
    assert rule_parameters(mixed_groups, **RANGES) is None
    # 24 * w_m must round to 64: w_m in [2.5, 2.83], outside 1.5..2
    assert rule_parameters(stages, **{**RANGES, "w_m": [(1.5, 2.0)]}) is None
    # fixed values are points to search: w_m = 2.54 gives it, w_m = 2.4 does not
    assert rule_parameters(stages, **{**RANGES, "w_m": [(2.4, 2.4), (2.54, 2.54)]}).w_m == 2.54
    assert rule_parameters(stages, **{**RANGES, "w_m": [(2.4, 2.4)]}) is None
