"""Specs: JSON/YAML round-trip, stable content id, validation errors that name the stage and field."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import pytest
import torch

import nasx
from nasx.net.spec import AggregatedBlock, Head, NetSpec, PlainBlock, Pool, ResidualBlock, SpecError, Stage, Stem
from nasx.net.zoo import ZOO
from random_specs import random_spec


def small_resnext(**stage2) -> NetSpec:
    s2 = dict(depth=2, width=64, block=AggregatedBlock(cardinality=8, group_width=4), stride=2) | stage2
    return NetSpec(stem=Stem("cifar", 16), stages=(Stage(1, 32, ResidualBlock(kind="basic")), Stage(**s2)),
                   head=Head("linear"), num_classes=10, resolution=32)


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_specs_round_trip_json_and_yaml(name):
    spec = nasx.zoo.get(name)
    assert NetSpec.from_json(spec.to_json()) == spec
    assert NetSpec.from_json(spec.to_json(indent=2)) == spec
    assert NetSpec.from_yaml(spec.to_yaml()) == spec
    assert NetSpec.from_yaml(spec.to_yaml()).id == spec.id


def test_random_specs_round_trip():
    rng = random.Random(7)
    for _ in range(200):
        spec = random_spec(rng)
        assert NetSpec.from_json(spec.to_json()) == spec
        assert NetSpec.from_yaml(spec.to_yaml()) == spec


def test_id_is_hash_of_canonical_json():
    spec = nasx.zoo.get("resnet20")
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    assert spec.id == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert len({nasx.zoo.get(n).id for n in ZOO}) == len(ZOO)  # every zoo net is a distinct point
    assert small_resnext().id == small_resnext().id
    assert small_resnext(depth=3).id != small_resnext().id


def test_specs_are_frozen_and_hashable():
    spec = small_resnext()
    with pytest.raises(AttributeError):
        spec.resolution = 64  # type: ignore[misc]
    assert len({spec, small_resnext()}) == 1


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(width=60), ["stage 2.width", "cardinality 8"]),
        (dict(depth=-1), ["stage 2.depth"]),
        (dict(stride=0), ["stage 2.stride"]),
        (dict(pool=Pool(64, 2)), ["stage 2.pool", "collapses"]),
        (dict(block=AggregatedBlock(cardinality=0, group_width=4)), ["stage 2.block.cardinality"]),
        (dict(block=ResidualBlock(kind="huge")), ["stage 2.block.kind"]),
        (dict(block=PlainBlock(kernel=4)), ["stage 2.block.kernel", "even"]),
    ],
)
def test_impossible_specs_raise_one_error_naming_stage_and_field(change, words):
    with pytest.raises(SpecError) as e:
        small_resnext(**change)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_resolution_collapse_before_the_head_is_reported():
    with pytest.raises(SpecError, match="stage 2.pool: resolution collapses"):
        nasx.zoo.get("alexnet").replace(resolution=16)
    with pytest.raises(SpecError, match="stem: resolution 5 collapses"):
        nasx.zoo.get("alexnet").replace(resolution=5)
    with pytest.raises(SpecError, match="head.pool"):
        nasx.zoo.get("vgg16").replace(resolution=16)


@pytest.mark.parametrize(
    "name, resolution, words",
    [
        ("resnet50", 4, ["stage 2.stride", "1x1 grid"]),  # the stem already reaches 1x1: stages 2-4 stride nothing
        ("resnet50", 16, ["stage 4.stride", "1x1 grid"]),
        ("googlenet", 16, ["stage 8.pool", "1x1 grid"]),
        ("alexnet", 5, ["stem: resolution 5", "stem.conv", "11x11 conv"]),
        ("resnet20", 2, ["stage 3.stride"]),
        ("regnet_x_400mf", 16, ["stage 4.stride", "1x1 grid"]),  # 5 strided 3x3s: 16 -> 8 -> 4 -> 2 -> 1
        ("regnet_x_400mf", 1, ["stem: resolution 1", "stem.conv", "3x3 conv with stride 2"]),
    ],
)
def test_collapsing_grid_names_the_op(name, resolution, words):
    """A window larger than its padded input, or a stride on a grid already 1 pixel wide, is a SpecError."""
    with pytest.raises(SpecError) as e:
        nasx.zoo.get(name).replace(resolution=resolution)
    assert all(w in str(e.value) for w in words), str(e.value)
    with pytest.raises(SpecError):
        nasx.complexity(name, resolution)


@pytest.mark.parametrize("name, smallest", [("resnet50", 17), ("resnet20", 3), ("googlenet", 31), ("vgg16", 32), ("alexnet", 63),
                                           ("regnet_x_400mf", 17)])
def test_smallest_resolution_that_does_not_collapse(name, smallest):
    nasx.zoo.get(name).replace(resolution=smallest)
    with pytest.raises(SpecError, match="collapses"):
        nasx.zoo.get(name).replace(resolution=smallest - 1)


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d["stages"][1]["block"].update(branch="dense"), ["stage 2.block.branch", "dense"]),
        (lambda d: d["stages"][0].update(colour="red"), ["stage 1.colour", "unknown field"]),
        (lambda d: d["stem"].update(kind="huge"), ["stem.kind"]),
        (lambda d: d["head"].update(kind="mlp"), ["head.kind"]),
        (lambda d: d["stages"][1].pop("width"), ["stage 2.width", "missing"]),
        (lambda d: d["stages"][1].update(depth="three"), ["stage 2.depth"]),
        (lambda d: d.update(flavour=1), ["flavour"]),
    ],
)
def test_bad_spec_documents(mutate, words):
    data = small_resnext().to_dict()
    mutate(data)
    with pytest.raises(SpecError) as e:
        NetSpec.from_dict(data)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_bad_json_and_yaml_text():
    with pytest.raises(SpecError, match="not valid JSON"):
        NetSpec.from_json("{stages: ")
    with pytest.raises(SpecError, match="not valid YAML"):
        NetSpec.from_yaml("stages: [\n  - {depth: 1")


def test_load_spec_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(small_resnext().to_dict() | {"num_classes": 0}))
    with pytest.raises(SpecError, match=r"bad\.json: num_classes"):
        nasx.load_spec(bad)
    with pytest.raises(SpecError, match="cannot read"):
        nasx.load_spec(tmp_path / "missing.yaml")


def test_sample_jsonl_line_is_accepted(tmp_path):
    spec = small_resnext()
    line = tmp_path / "one.jsonl"
    line.write_text(json.dumps({"id": spec.id, "flops": 1, "params": 2, "spec": spec.to_dict()}) + "\n")
    assert nasx.load_spec(line) == spec


def test_mixed_branch_types_in_one_net():
    spec = NetSpec(
        stem=Stem("cifar", 16),
        stages=(Stage(2, 32, PlainBlock(bn=True)), Stage(2, 64, ResidualBlock(kind="bottleneck"), stride=2),
                Stage(1, 128, AggregatedBlock(cardinality=4, group_width=8), stride=2)),
        head=Head("linear"), num_classes=10, resolution=32,
    )
    assert spec.describe() == "plain+residual+aggregated 3 stages d=(2,2,1) w=(32,64,128) C=4 gw=8"
    assert nasx.complexity(spec).params == sum(p.numel() for p in nasx.build(spec).parameters())


def simple_stem_net(resolution: int) -> NetSpec:
    return NetSpec(stem=Stem("simple", 8), stages=(Stage(2, 16, AggregatedBlock(cardinality=2, group_width=8), stride=2),),
                   head=Head("linear"), num_classes=10, resolution=resolution)


def test_simple_stem_is_a_strided_3x3_conv_bn_relu():
    """torchvision's SimpleStemIN (the RegNets' stem): 3x3 conv, stride 2, padding 1, no bias; BN; ReLU."""
    spec = simple_stem_net(9)
    stem = nasx.build(spec).stem
    assert [type(m).__name__ for m in stem] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert (stem.conv.kernel_size, stem.conv.stride, stem.conv.padding, stem.conv.bias) == ((3, 3), (2, 2), (1, 1), None)
    assert stem(torch.zeros(1, 3, 9, 9)).shape == (1, 8, 5, 5)
    assert NetSpec.from_json(spec.to_json()) == spec and NetSpec.from_yaml(spec.to_yaml()) == spec
    assert spec.to_dict()["stem"] == {"kind": "simple", "width": 8, "mid_width": None}
    assert spec.describe() == "aggregated 1 stages d=(2) w=(16) C=2 gw=8"
    assert nasx.net.fit.fit(spec, nasx.net.fit.InputShape(32, 1, 100)).stem == spec.stem
    # 3 px: the stem gives 2x2, the stage 1x1; 2 px: the stage strides the stem's 1x1 grid
    simple_stem_net(3)
    with pytest.raises(SpecError, match=r"stage 1.stride: resolution collapses \(a 3x3 conv with stride 2 strides the 1x1"):
        simple_stem_net(2)
    with pytest.raises(SpecError, match=r"stem: resolution 1 collapses in the stem \(stem.conv: a 3x3 conv with stride 2"):
        simple_stem_net(1)


def test_batchnorm_eps_and_momentum_are_spec_fields_left_out_at_their_defaults():
    spec = nasx.zoo.get("resnext29_8x64d")
    assert "bn_eps" not in spec.to_dict() and "bn_momentum" not in spec.to_dict()
    assert spec.id == "732d0e817bd6"  # the id this net had before the fields existed (docs/zoo.md, "A tour")
    tuned = spec.replace(bn_eps=1e-3, bn_momentum=0.01)
    assert tuned.to_dict()["bn_eps"] == 1e-3 and tuned.id != spec.id
    assert NetSpec.from_json(tuned.to_json()) == tuned and NetSpec.from_yaml(tuned.to_yaml()) == tuned
    bns = [m for m in nasx.build(tuned).modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    assert nasx.complexity(tuned) == nasx.complexity(spec)
    assert nasx.zoo.get("googlenet").bn_eps == 1e-3  # torchvision's BasicConv2d
    for bad, field in [(dict(bn_eps=0), "bn_eps"), (dict(bn_momentum=1.5), "bn_momentum")]:
        with pytest.raises(SpecError, match=field):
            spec.replace(**bad)


def multibranch_net(*paths: nasx.BlockPath, width: int | None = None, resolution: int = 17, **block) -> NetSpec:
    b = nasx.MultiBranchBlock(paths=paths, **block)
    return NetSpec(stem=Stem("cifar", 8), stages=(Stage(1, width or b.w_concat(8), b),), resolution=resolution)


def test_multibranch_block_round_trips_with_asymmetric_kernels():
    from nasx.net.zoo import _v3_e

    spec = multibranch_net(*_v3_e().paths)
    assert spec.stages[0].block.paths[1].split[0].kernel == (1, 3)
    assert NetSpec.from_json(spec.to_json()) == spec and NetSpec.from_yaml(spec.to_yaml()) == spec
    assert spec.to_dict()["stages"][0]["block"]["paths"][1]["split"][0]["kernel"] == [1, 3]
    assert nasx.Conv(4, [3, 3]) == nasx.Conv(4, 3)  # one spelling of a square kernel
    assert "kind" not in nasx.zoo.get("vgg16").to_dict()["head"]["pool"]  # pool fields at their defaults stay out


@pytest.mark.parametrize(
    "paths, block, words",
    [
        ((nasx.BlockPath(convs=(nasx.Conv(4, 3, 2, "valid"),)), nasx.BlockPath(convs=(nasx.Conv(4),))), {},
         ["stage 1.block.paths", "path 1: 8x8, path 2: 17x17"]),
        ((nasx.BlockPath(convs=(nasx.Conv(4, 3, 1, "valid"),)),), dict(residual=True), ["stage 1.block.residual", "keep"]),
        ((nasx.BlockPath(convs=(nasx.Conv(4, (1, 2)),)),), {}, ["stage 1.block.path 1.convs 1.kernel", "odd"]),
        ((nasx.BlockPath(convs=(nasx.Conv(4, 19, 1, "valid"),)),), {}, ["stage 1.block.path 1.convs 1", "19x19 conv cannot apply"]),
        ((nasx.BlockPath(),), {}, ["stage 1.block.path 1", "empty"]),
        ((nasx.BlockPath(convs=(nasx.Conv(4),)),), dict(scale=0.2), ["stage 1.block.scale", "residual"]),
        ((nasx.BlockPath(pool=Pool(3, 1, 1, kind="mean")),), {}, ["stage 1.block.path 1.pool.kind"]),
    ],
)
def test_impossible_multibranch_blocks_name_the_path(paths, block, words):
    with pytest.raises(SpecError) as e:
        multibranch_net(*paths, width=8 if block.get("residual") else None, **block)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_multibranch_stage_width_must_be_the_concatenation():
    with pytest.raises(SpecError, match="concatenation has 12 channels"):
        multibranch_net(nasx.BlockPath(convs=(nasx.Conv(4),)), nasx.BlockPath(pool=Pool(3, 1, 1)), width=13)


def test_inception_block_v2_v3_forms_leave_googlenet_unchanged():
    from nasx.net.spec import InceptionBlock

    old = InceptionBlock()
    assert set(old.__dataclass_fields__) - set(nasx.zoo.get("googlenet").to_dict()["stages"][0]["block"]) == {
        "factorize", "n", "pool_kind", "scale"}  # left out at their defaults: googlenet's JSON is as before
    def kernels(block: InceptionBlock) -> tuple[list, list]:
        return [c.kernel for c in block.tower_3x3()], [c.kernel for c in block.tower_5x5()]

    assert kernels(old) == ([3], [3])
    assert kernels(InceptionBlock(kernel_5x5=5, factorize="3x3")) == ([3], [3, 3])  # Fig. 5: 5x5 as two 3x3
    assert kernels(InceptionBlock(factorize="asymmetric", n=7)) == ([(1, 7), (7, 1)], [(7, 1), (1, 7), (7, 1), (1, 7)])
    spec = multibranch_net(nasx.BlockPath(convs=(nasx.Conv(8),)))  # a valid net to put the block in
    for block in (InceptionBlock(factorize="asymmetric", n=3, pool_kind="avg", residual=True, scale=0.2),
                  InceptionBlock(kernel_5x5=5, factorize="3x3")):
        net = spec.replace(stages=(Stage(2, 32 if block.residual else block.w_concat, block),))
        assert NetSpec.from_json(net.to_json()) == net
        assert nasx.complexity(net).params == sum(p.numel() for p in nasx.build(net).parameters())
    with pytest.raises(SpecError, match="scale"):
        spec.replace(stages=(Stage(1, 256, InceptionBlock(scale=0.2)),))


def test_aux_head_kinds_leave_inception_v3_aux_unchanged_and_name_bad_fields():
    # the fields added for GoogLeNet's aux heads stay out at their defaults: inception_v3_aux's JSON is as before
    assert nasx.zoo.get("inception_v3_aux").to_dict()["stages"][5]["aux"] == {"width": 128, "conv_width": 768}
    googlenet_aux = nasx.zoo.get("googlenet_aux")
    assert googlenet_aux.to_dict()["stages"][2]["aux"] == {"width": 128, "conv_width": 768, "kind": "googlenet"}
    assert NetSpec.from_json(googlenet_aux.to_json()) == googlenet_aux
    stage = googlenet_aux.stages[2]
    for bad, field in [(dict(kind="paper"), "stage 3.aux.kind"), (dict(pool_size=0), "stage 3.aux.pool_size"),
                       (dict(hidden=0), "stage 3.aux.hidden"), (dict(dropout=1.0), "stage 3.aux.dropout")]:
        stages = list(googlenet_aux.stages)
        stages[2] = dataclasses.replace(stage, aux=dataclasses.replace(stage.aux, **bad))
        with pytest.raises(SpecError, match=field):
            googlenet_aux.replace(stages=tuple(stages))
