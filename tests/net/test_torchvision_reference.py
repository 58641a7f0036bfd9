"""Against torchvision and timm themselves (skipped where they are not installed, as in CI): the same
parameter count, the same fvcore FLOPs at two resolutions, and the same function once the reference's
weights are copied in by position. Side environment and versions: docs/zoo.md, "The zoo is checked against torchvision and timm".
"""

from __future__ import annotations

import warnings

import pytest
import torch

import nasx
from nasx.net.verify import measure

fvcore_nn = pytest.importorskip("fvcore.nn")

# zoo name -> (library, constructor name); zoo nets that neither library has (googlenet_paper,
# alexnet_paper, vgg11_lrn, vgg16_c, inception_resnet_v1) are checked against their papers' counts in test_zoo.py
TIMM = {"inception_v4": "inception_v4", "inception_resnet_v2": "inception_resnet_v2"}
NO_REFERENCE = {"googlenet_paper", "alexnet_paper", "vgg11_lrn", "vgg16_c", "inception_resnet_v1"}
TORCHVISION = [n for n, e in nasx.zoo.ZOO.items() if e.dataset == "imagenet" and n not in NO_REFERENCE | set(TIMM)]
# a second resolution per net: odd, and large enough for the Inception stems (75 px) and the auxiliary head
OTHER_RESOLUTION = {"inception_v3_aux": 331}
# torchvision registers GoogLeNet's aux1 / aux2 after inception5b; nasx registers each auxiliary
# classifier after the stage it reads (4a: s3, 4d: s6), as Inception-v3's AuxLogits sits after Mixed_6e
AUX_AFTER = {"googlenet_aux": {"aux1": "inception4a.", "aux2": "inception4d."}}
# torchvision's RegNet blocks register their projection before the transform `f`; nasx's ResBlock (as
# torchvision's ResNet) after it: the reference test moves each block's `proj.` tensors behind its `f.`
PROJ_FIRST = {n for n in nasx.zoo.ZOO if n.startswith("regnet_")}


def other_resolution(name: str) -> int:
    return OTHER_RESOLUTION.get(name, 257)


def reference_model(name: str) -> torch.nn.Module:
    if name in TIMM:
        timm = pytest.importorskip("timm")
        return timm.create_model(TIMM[name], pretrained=False).eval()
    torchvision = pytest.importorskip("torchvision")
    kwargs = {}
    if name in ("googlenet", "googlenet_aux", "inception_v3", "inception_v3_aux"):
        kwargs = {"aux_logits": name.endswith("_aux"), "init_weights": True}
    return getattr(torchvision.models, name.removesuffix("_aux"))(weights=None, **kwargs).eval()


def reference_state(name: str, reference: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The reference's state dict, its auxiliary classifiers moved to follow the module they read (AUX_AFTER)."""
    state = reference.state_dict()
    for aux, after in AUX_AFTER.get(name, {}).items():
        moved = {k: v for k, v in state.items() if k.startswith(f"{aux}.")}
        rest = [k for k in state if k not in moved]
        last = max(i for i, k in enumerate(rest) if k.startswith(after))
        order = rest[: last + 1] + list(moved) + rest[last + 1:]
        state = {k: state[k] for k in order}
    return reorder_projection_last(state) if name in PROJ_FIRST else state


def reorder_projection_last(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision RegNet's state with each block's `proj.` tensors after its `f.` ones (nasx's order)."""
    def block_and_part(key: str) -> tuple[str, int]:
        block, sep, _ = key.partition(".proj.")
        return (block, 1) if sep else (key.partition(".f.")[0], 0)

    blocks = {b: i for i, b in enumerate(dict.fromkeys(block_and_part(k)[0] for k in state))}  # in their order
    order = sorted(state, key=lambda k: (blocks[block_and_part(k)[0]], block_and_part(k)[1]))
    return {k: state[k] for k in order}


def fvcore_flops(model: torch.nn.Module, resolution: int) -> int:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        analysis = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return int(analysis.total())


@pytest.mark.parametrize("name", TORCHVISION + list(TIMM))
def test_same_flops_params_and_function_as_the_reference(name):
    reference = reference_model(name)
    ours = nasx.build(name).eval()
    resolution = nasx.zoo.get(name).resolution
    assert nasx.complexity(name).params == sum(p.numel() for p in reference.parameters())
    for r in (resolution, other_resolution(name)):
        assert nasx.complexity(name, r).flops == fvcore_flops(reference, r), f"at {r} px"
    # same tensors in the same order: copy the reference's state positionally, then compare outputs
    theirs, mine = reference_state(name, reference), ours.state_dict()
    assert [tuple(v.shape) for v in theirs.values()] == [tuple(v.shape) for v in mine.values()]
    ours.load_state_dict(dict(zip(mine, theirs.values())))
    bn_eps = [m.eps for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn_eps == [m.eps for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)
    if any(stage.aux is not None for stage in ours.spec.stages):  # training: batch statistics, dropout, aux heads
        mine, theirs = training_outputs(ours, x), training_outputs(reference, x)
        # torchvision returns (logits, aux2, aux1) for GoogLeNet, (logits, aux) for Inception-v3
        theirs = [theirs[0], *(reversed(theirs[1:]) if name.startswith("googlenet") else theirs[1:])]
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def training_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """A training forward's logits and auxiliary logits, with the dropout masks of seed 1 (both nets
    draw them in the same order: the aux heads in forward order, then the head's)."""
    torch.manual_seed(1)
    with torch.no_grad():
        out = model.train()(x)
    return list(out) if isinstance(out, tuple) else [out, *model.aux_logits]


def test_reference_measure_agrees_with_fvcore_on_our_model():
    assert measure(nasx.zoo.get("resnet18"))["flops"] == fvcore_flops(reference_model("resnet18"), 224)


def near_half(x: float) -> bool:
    """Within float32 rounding of a .5, where torchvision's float32 and nasx's doubles may round apart."""
    return abs(x - round(x - 0.5) - 0.5) < 1e-5 * max(1.0, abs(x))


def test_regnet_rule_equals_torchvisions_block_params():
    """regnet_widths against torchvision's BlockParams: the zoo's four nets, and random parameters except where a
    block's exponent or a width falls within float32 rounding of a .5 (torchvision rounds in float32)."""
    import math
    import random

    torchvision = pytest.importorskip("torchvision")
    from nasx.net.regnet import regnet_widths
    from test_regnet import TORCHVISION_STAGES

    def theirs(d, w_0, w_a, w_m, g, b=1.0):
        p = torchvision.models.regnet.BlockParams.from_init_params(d, w_0, w_a, w_m, g, bottleneck_multiplier=b)
        return tuple(zip(p.depths, p.widths, p.group_widths))

    def ours(*params):
        return tuple((s.depth, s.width, s.group_width) for s in regnet_widths(*params))

    for params, stages in TORCHVISION_STAGES.values():
        assert ours(*params) == theirs(*params) == stages
    rng, apart = random.Random(0), []
    for _ in range(3000):
        params = (rng.randint(1, 40), 8 * rng.randint(1, 40), rng.uniform(0, 256), rng.uniform(1.2, 3.5),
                  rng.choice([1, 2, 4, 8, 16, 24, 32, 48, 64]), rng.choice([1.0, 1.0, 0.5, 0.25]))
        if ours(*params) != theirs(*params):
            apart.append(params)
    for d, w_0, w_a, w_m, g, b in apart:
        exponents = [math.log((w_0 + w_a * j) / w_0) / math.log(w_m) for j in range(d)]
        widths = [w_0 * w_m ** round(k) / 8 for k in exponents]
        assert any(near_half(x) for x in exponents + widths), (d, w_0, w_a, w_m, g, b)
    assert len(apart) <= 3  # 1 in 20,000 in a longer run
    with pytest.raises(ValueError):  # the parameters nasx refuses, torchvision refuses too
        theirs(22, 12, 24.48, 2.54, 16)


def test_regnet_space_members_are_torchvision_regnets():
    """Members drawn from the regnet space, rebuilt by torchvision from the parameters the space finds for them:
    the same parameter count, fvcore FLOPs and outputs."""
    torchvision = pytest.importorskip("torchvision")
    from nasx.net.regnet import RuleStage
    from nasx.space import load_space
    from nasx.space.sampling import sample

    space = load_space("regnet")
    for s in sample(space, 11, 3):
        rule = space.rule.parameters(tuple(RuleStage(st.depth, st.width, st.block.group_width) for st in s.spec.stages))
        block_params = torchvision.models.regnet.BlockParams.from_init_params(
            rule.depth, rule.w_0, rule.w_a, rule.w_m, rule.group_width)
        reference = torchvision.models.regnet.RegNet(block_params).eval()
        assert s.complexity.params == sum(p.numel() for p in reference.parameters())
        assert s.complexity.flops == fvcore_flops(reference, 224)
        ours, theirs = nasx.build(s.spec).eval(), reorder_projection_last(reference.state_dict())
        ours.load_state_dict(dict(zip(ours.state_dict(), theirs.values())))
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)
