"""Against torchvision itself (skipped where torchvision is not installed, as in CI): same FLOPs under
fvcore, same parameter count, and the same function once torchvision's weights are copied in."""

from __future__ import annotations

import warnings

import pytest
import torch

import nasx
from nasx.net.verify import measure

torchvision = pytest.importorskip("torchvision")
fvcore_nn = pytest.importorskip("fvcore.nn")

IMAGENET = [n for n, e in nasx.zoo.ZOO.items() if e.dataset == "imagenet" and n != "googlenet_paper"]


def torchvision_model(name: str) -> torch.nn.Module:
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(weights=None, **kwargs).eval()


def fvcore_flops(model: torch.nn.Module, resolution: int) -> int:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        analysis = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return int(analysis.total())


@pytest.mark.parametrize("name", IMAGENET)
def test_same_flops_params_and_function_as_torchvision(name):
    reference = torchvision_model(name)
    ours = nasx.build(name).eval()
    assert nasx.complexity(name).flops == fvcore_flops(reference, 224)
    assert nasx.complexity(name).params == sum(p.numel() for p in reference.parameters())
    # same tensors in the same order: copy torchvision's state positionally, then compare outputs
    theirs, mine = reference.state_dict(), ours.state_dict()
    assert [tuple(v.shape) for v in theirs.values()] == [tuple(v.shape) for v in mine.values()]
    ours.load_state_dict(dict(zip(mine, theirs.values())))
    assert [m.eps for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)] == [
        m.eps for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)
    ]
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


def test_reference_measure_agrees_with_fvcore_on_our_model():
    assert measure(nasx.zoo.get("resnet18"))["flops"] == fvcore_flops(torchvision_model("resnet18"), 224)
