"""The analytic twin equals fvcore (FLOPs, activations) and numel (params): whole zoo and random specs of every branch type."""

from __future__ import annotations

import random

import pytest

import nasx
from nasx.net.verify import measure
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
@pytest.mark.parametrize("resolution", [97, 160, 321])
def test_zoo_counts_equal_at_other_resolutions(name, resolution):
    assert_counts_equal(nasx.zoo.get(name), resolution)


@pytest.mark.parametrize("branch", BRANCHES, ids=lambda b: b or "mixed")
def test_random_specs_count_equal_fvcore_and_numel(branch):
    rng = random.Random(f"complexity-{branch}")
    for _ in range(SPECS_PER_BRANCH):
        spec = random_spec(rng, branch)
        if branch is not None:
            assert {s.block.branch for s in spec.stages} == {branch}
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
