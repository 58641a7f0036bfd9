"""The analytic twin equals fvcore (FLOPs, activations) and numel (params): whole zoo and random specs of every branch type."""

from __future__ import annotations

import random
from collections import Counter

import pytest

import nasx
from nasx.net.verify import measure
from nasx.net.build import make_aux
from nasx.net.complexity import aux_classifier_params
from nasx.net.spec import AuxHead, BlockPath, Conv, Head, InceptionBlock, MultiBranchBlock, Pool, Stage, Stem, pair
from nasx.net.zoo import ZOO
from random_specs import random_spec

BRANCHES = ["plain", "residual", "aggregated", "inception", None]  # None: stages of mixed branch types
SPECS_PER_BRANCH = 100


def assert_counts_equal(spec: nasx.NetSpec, resolution: int | None = None) -> None:
    analytic = nasx.complexity(spec, resolution).to_dict()
    measured = measure(spec, resolution)
    assert analytic == measured, f"{spec.to_json()}: analytic {analytic} != measured {measured}"


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_counts_equal_fvcore_and_numel(name):
    """At the net's own resolution (224 for ImageNet, 32 for CIFAR), where ceil-mode pools matter."""
    assert_counts_equal(nasx.zoo.get(name))


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "alexnet", "vgg11_bn", "resnet20"])
@pytest.mark.parametrize("resolution", [97, pytest.param(160, marks=pytest.mark.heavy), 321])
def test_zoo_counts_equal_at_other_resolutions(name, resolution):
    assert_counts_equal(nasx.zoo.get(name), resolution)


@pytest.mark.heavy
@pytest.mark.parametrize("branch", BRANCHES, ids=lambda b: b or "mixed")
def test_random_specs_count_equal_fvcore_and_numel(branch, count=SPECS_PER_BRANCH):
    rng = random.Random(f"complexity-{branch}")
    for _ in range(count):
        spec = random_spec(rng, branch)
        if branch is not None:
            assert {s.block.branch for s in spec.stages} == {branch}
        assert_counts_equal(spec)


@pytest.mark.parametrize("aux", [
    AuxHead(128, 768), AuxHead(128, kind="googlenet"), AuxHead(3, kind="googlenet", pool_size=2, hidden=5, dropout=0.0),
], ids=["inception_v3", "googlenet", "googlenet small"])
def test_aux_head_twin_equals_numel(aux):
    assert aux_classifier_params(512, 1000, aux) == sum(p.numel() for p in make_aux(512, 1000, aux).parameters())


@pytest.mark.parametrize("resolution", [32, 45])
def test_googlenet_aux_heads_count_parameters_and_leave_eval_flops_alone(resolution):
    """A small GoogLeNet-style net with GoogLeNet's aux head on a 4x4 (or 5x5) grid: the adaptive pool
    fits any grid; fvcore (eval mode) sees no aux head, numel does."""
    block = InceptionBlock(c1x1=4, c3x3_reduce=3, c3x3=5, c5x5_reduce=2, c5x5=3, pool_proj=2)
    stages = (Stage(1, block.w_concat, block, aux=AuxHead(6, kind="googlenet", pool_size=4, hidden=9)),
              Stage(1, block.w_concat, block, pool=Pool(3, 2, ceil_mode=True)))
    spec = nasx.NetSpec(stem=Stem("googlenet", 8, mid_width=4), stages=stages, head=Head("linear", dropout=0.2),
                        num_classes=7, resolution=resolution)
    assert_counts_equal(spec)
    plain = spec.replace(stages=(Stage(1, block.w_concat, block), stages[1]))
    assert nasx.complexity(spec).flops == nasx.complexity(plain).flops
    # 1x1 conv from the 14-channel concat + BN, FC 6*4*4 -> 9, FC 9 -> 7
    assert nasx.complexity(spec).params - nasx.complexity(plain).params == (14 * 6 + 2 * 6) + (6 * 16 * 9 + 9) + (9 * 7 + 7)


@pytest.mark.parametrize("resolution", [3, 32, 57])
def test_simple_stem_counts_equal_fvcore_and_numel(resolution):
    """The 3x3/2 stem before a strided aggregated stage, at even and odd sides."""
    block = nasx.AggregatedBlock(cardinality=4, group_width=6)
    spec = nasx.NetSpec(stem=Stem("simple", 12), stages=(Stage(2, 24, block, stride=2),), resolution=resolution)
    assert_counts_equal(spec)


@pytest.mark.parametrize("resolution", [75, 90, 123])
def test_inception_resnet_v1_stem_counts_equal_fvcore_and_numel(resolution):
    """Fig. 14's stem (its last conv strides where the v3 stem pools) before a small residual module and a
    reduction, at odd and even sides."""
    residual = MultiBranchBlock(paths=(BlockPath(convs=(Conv(4),)), BlockPath(convs=(Conv(4), Conv(6, (1, 7))))),
                                residual=True, scale=0.17)
    reduction = MultiBranchBlock(paths=(BlockPath(convs=(Conv(5, 3, 2, "valid"),)), BlockPath(pool=Pool(3, 2))))
    spec = nasx.NetSpec(stem=Stem("inception_resnet_v1", 12), stages=(Stage(2, 10, residual), Stage(1, 15, reduction)),
                        head=Head("linear", dropout=0.2), num_classes=7, resolution=resolution)
    assert_counts_equal(spec)


def test_flops_grow_with_resolution_and_params_do_not():
    small, large = nasx.complexity("resnet50", 224), nasx.complexity("resnet50", 448)
    assert small.params == large.params == 25_557_032
    # every feature map doubles its side, so all but the resolution-free fc layer (2048 x 1000) is 4x
    assert large.flops - 2_048_000 == 4 * (small.flops - 2_048_000)
    assert large.acts - 1000 == 4 * (small.acts - 1000)


def test_complexity_accepts_names_specs_and_files(tmp_path):
    spec = nasx.zoo.get("resnext29_8x64d")
    path = tmp_path / "net.yaml"
    path.write_text(spec.to_yaml())
    assert nasx.complexity("resnext29_8x64d") == nasx.complexity(spec) == nasx.complexity(str(path))


def multibranch_features(spec: nasx.NetSpec) -> set[str]:
    """Which of the new constructs a spec uses (for the coverage check below)."""
    seen = set()
    if spec.stem.kind.startswith("inception"):
        seen.add(f"stem {spec.stem.kind}")
    for stage in spec.stages:
        block = stage.block
        if not isinstance(block, MultiBranchBlock):
            continue
        if block.residual:
            seen.add("residual")
            if block.scale != 1.0:
                seen.add("scale")
            if not block.activation:
                seen.add("no activation")
        for path in block.paths:
            convs = path.convs + path.split
            if path.split:
                seen.add("split")
            if path.pool is not None:
                seen.add(f"{path.pool.kind} pool" + (" stride 2" if path.pool.stride == 2 else ""))
                if not path.pool.count_include_pad:
                    seen.add("count_include_pad off")
            if any(c.padding == "valid" for c in convs):
                seen.add("valid padding")
            if any(c.stride == 2 for c in convs):
                seen.add("stride 2 conv")
            if any(pair(c.kernel)[0] != pair(c.kernel)[1] for c in convs):
                seen.add("asymmetric kernel")
    return seen


def check_random_multibranch_specs(n: int, seed: str) -> Counter:
    rng = random.Random(seed)
    seen: Counter = Counter()
    for _ in range(n):
        spec = random_spec(rng, "multibranch")
        seen.update(multibranch_features(spec))
        seen["odd resolution"] += spec.resolution % 2
        seen["aux head"] += any(stage.aux is not None and stage.aux.kind == "inception_v3" for stage in spec.stages)
        seen["aux head googlenet"] += any(stage.aux is not None and stage.aux.kind == "googlenet" for stage in spec.stages)
        assert_counts_equal(spec)
    return seen


ALL_FEATURES = {
    "residual", "scale", "no activation", "split", "max pool", "avg pool", "max pool stride 2", "avg pool stride 2",
    "count_include_pad off", "valid padding", "stride 2 conv", "asymmetric kernel", "stem inception_v3",
    "stem inception_v4", "odd resolution", "aux head", "aux head googlenet",
}


def test_random_multibranch_specs_count_equal_fvcore_and_numel():
    seen = check_random_multibranch_specs(30, "multibranch-quick")
    assert len(seen) >= 10, seen


@pytest.mark.slow
@pytest.mark.heavy
def test_500_random_multibranch_specs_count_equal_fvcore_and_numel():
    """Paths of asymmetric and 'valid' convs, reductions beside pools, splits, residual forms, Inception
    stems, odd resolutions: 500 specs, each construct many times."""
    seen = check_random_multibranch_specs(500, "multibranch-500")
    assert set(seen) == ALL_FEATURES and min(seen.values()) >= 10, seen


@pytest.mark.parametrize("branch", BRANCHES, ids=lambda b: b or "mixed")
def test_a_few_random_specs_count_equal_fvcore_and_numel(branch):
    """The default tier's share of the heavy sweep: its first 8 specs of each branch."""
    test_random_specs_count_equal_fvcore_and_numel(branch, count=8)
