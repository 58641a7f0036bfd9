"""The zoo: torchvision's published parameter counts to the parameter, the papers' CIFAR figures, working models."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import nasx
from nasx.net.zoo import ZOO

# torchvision's published figures (the `num_params` of each model's weights meta; googlenet without aux heads)
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336, "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240, "wide_resnet101_2": 126_886_696,
    "inception_v3": 27_161_264 - 3_326_696,  # weights meta counts the aux classifier: 98,560 + 2,459,136 + 769,000
    "inception_v3_aux": 27_161_264,
    # sum of numel of googlenet(aux_logits=True): aux1 (512 in) 3,188,968 + aux2 (528 in) 3,191,016
    "googlenet_aux": 6_624_904 + 3_188_968 + 3_191_016,
    "regnet_x_400mf": 5_495_976, "regnet_x_800mf": 7_259_656, "regnet_x_1_6gf": 9_190_136,
    "regnet_x_3_2gf": 15_296_552,
}
# timm's models (sum of numel, 1000 classes; timm publishes 42.7M and 55.8M)
TIMM_PARAMS = {"inception_v4": 42_679_816, "inception_resnet_v2": 55_843_464}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMS) + list(TIMM_PARAMS))
def test_reference_parameter_counts_exact(name):
    expected = (TORCHVISION_PARAMS | TIMM_PARAMS)[name]
    assert nasx.complexity(name).params == expected
    assert n_params(nasx.build(name)) == expected


@pytest.mark.parametrize("name", ["inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2"])
def test_inception_nets_take_75_pixels_and_no_fewer(name):
    """torchvision documents 75 x 75 as Inception-v3's smallest input; the grid walk finds the same."""
    nasx.zoo.get(name).replace(resolution=75)
    with pytest.raises(nasx.SpecError, match="stride 2 cannot apply to the 2x2 grid"):
        nasx.zoo.get(name).replace(resolution=74)


def cifar_resnet_option_a_params(n: int, classes: int = 10) -> int:
    """He et al.'s CIFAR ResNet-(6n+2) with parameter-free (option A) shortcuts, by hand."""
    def conv_bn(w_in, w_out):
        return 9 * w_in * w_out + 2 * w_out

    total = conv_bn(3, 16)
    w_in = 16
    for w in (16, 32, 64):
        for _ in range(n):
            total += conv_bn(w_in, w) + conv_bn(w, w)
            w_in = w
    return total + 64 * classes + classes


@pytest.mark.parametrize("n, paper_millions", [(3, "0.27"), (5, "0.46"), (7, "0.66"), (9, "0.85"), (18, "1.7")])
def test_cifar_resnets_match_he_et_al(n, paper_millions):
    name = f"resnet{6 * n + 2}"
    params = nasx.complexity(name).params
    assert params == cifar_resnet_option_a_params(n)
    assert f"{params / 1e6:.2g}" == paper_millions  # He et al. 2016, Table 6
    assert n_params(nasx.build(name)) == params


@pytest.mark.parametrize("name, paper", [("resnext29_8x64d", 34.4e6), ("resnext29_16x64d", 68.1e6)])
def test_cifar_resnexts_match_xie_et_al(name, paper):
    params = nasx.complexity(name).params
    assert abs(params - paper) / paper < 0.001  # Table 7 prints three significant digits


def test_googlenet_paper_variant_differs_only_in_the_5x5_branch():
    tv, paper = nasx.zoo.get("googlenet"), nasx.zoo.get("googlenet_paper")
    assert [s.block.kernel_5x5 for s in tv.stages] == [3] * 9
    assert [s.block.kernel_5x5 for s in paper.stages] == [5] * 9
    # 16 extra weights per (c5x5_reduce x c5x5) pair: 5x5 - 3x3
    extra = sum(16 * s.block.c5x5_reduce * s.block.c5x5 for s in tv.stages)
    assert nasx.complexity(paper).params - nasx.complexity(tv).params == extra


def small_resolution(name: str) -> int:
    if ZOO[name].dataset == "cifar":
        return 32
    return max(64, min(r for r in range(64, 300) if _fits(name, r)))


def _fits(name: str, resolution: int) -> bool:
    try:
        nasx.zoo.get(name).replace(resolution=resolution)
        return True
    except nasx.SpecError:
        return False


# the default tier builds and backpropagates the nets under 30M parameters; `pytest -m heavy` all of them
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.heavy) if nasx.complexity(n).params > 30_000_000
                                  else n for n in ZOO])
def test_forward_shape_no_nan_and_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = nasx.build(name, num_classes=7).train()
    x = torch.randn(2, 3, small_resolution(name), small_resolution(name))
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    assert len(model.aux_logits) == sum(s.aux is not None for s in model.spec.stages)
    loss = out.logsumexp(1).sum() + sum(aux.logsumexp(1).sum() for aux in model.aux_logits)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"no (or an all-zero) gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_build_overrides_classes_and_channels():
    model = nasx.build("resnet20", num_classes=100, in_channels=1)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 100)
    assert model.stem.conv.in_channels == 1


def test_module_names_follow_the_spec():
    model = nasx.build("resnet50")
    names = [n for n, _ in model.named_children()]
    assert names == ["stem", "s1", "s2", "s3", "s4", "head"]
    assert [n for n, _ in model.s3.named_children()] == [f"b{i}" for i in range(1, 7)]


def alexnet_two_gpu_params(classes: int = 1000) -> int:
    """Krizhevsky et al. 2012, Fig. 2, by hand: conv2, conv4 and conv5 see only their own GPU's half."""
    def conv(w_in, w_out, k, groups=1):
        return w_out * (w_in // groups) * k * k + w_out

    convs = conv(3, 96, 11) + conv(96, 256, 5, 2) + conv(256, 384, 3) + conv(384, 384, 3, 2) + conv(384, 256, 3, 2)
    fcs = (256 * 6 * 6 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * classes + classes)
    return convs + fcs


def test_alexnet_paper_is_the_two_gpu_net_with_lrn():
    assert alexnet_two_gpu_params() == 60_965_224
    spec = nasx.zoo.get("alexnet_paper")
    assert nasx.complexity(spec).params == 60_965_224 == n_params(nasx.build(spec))
    model = nasx.build(spec)
    assert [m.groups for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [1, 2, 1, 2, 2]
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in model.modules()) == 2


def inception_resnet_v1_params(classes: int = 1000) -> int:
    """Szegedy et al. 2017's Inception-ResNet-v1 by hand (Figs. 7, 10-15, Table 1): every conv with BN
    (weight and bias, no conv bias), the linear 1x1 before each sum with a bias and no BN."""
    def conv_bn(w_in, w_out, kh, kw=None):
        return w_in * w_out * kh * (kh if kw is None else kw) + 2 * w_out

    def linear(w_in, w_out):
        return w_in * w_out + w_out

    stem = conv_bn(3, 32, 3) + conv_bn(32, 32, 3) + conv_bn(32, 64, 3) + conv_bn(64, 80, 1) + conv_bn(80, 192, 3) \
        + conv_bn(192, 256, 3)  # Fig. 14: 35x35x256
    block_a = conv_bn(256, 32, 1) + conv_bn(256, 32, 1) + conv_bn(32, 32, 3) \
        + conv_bn(256, 32, 1) + conv_bn(32, 32, 3) + conv_bn(32, 32, 3) + linear(96, 256)  # Fig. 10
    reduction_a = conv_bn(256, 384, 3) + conv_bn(256, 192, 1) + conv_bn(192, 192, 3) + conv_bn(192, 256, 3)  # Fig. 7
    block_b = conv_bn(896, 128, 1) + conv_bn(896, 128, 1) + conv_bn(128, 128, 1, 7) + conv_bn(128, 128, 7, 1) \
        + linear(256, 896)  # Fig. 11, on 384 + 256 + 256 = 896 channels
    reduction_b = conv_bn(896, 256, 1) + conv_bn(256, 384, 3) + conv_bn(896, 256, 1) + conv_bn(256, 256, 3) \
        + conv_bn(896, 256, 1) + conv_bn(256, 256, 3) + conv_bn(256, 256, 3)  # Fig. 12
    block_c = conv_bn(1792, 192, 1) + conv_bn(1792, 192, 1) + conv_bn(192, 192, 1, 3) + conv_bn(192, 192, 3, 1) \
        + linear(384, 1792)  # Fig. 13, on 384 + 256 + 256 + 896 = 1792 channels
    return stem + 5 * block_a + reduction_a + 10 * block_b + reduction_b + 5 * block_c + linear(1792, classes)


def test_inception_resnet_v1_is_the_papers_net_counted_by_hand():
    spec = nasx.zoo.get("inception_resnet_v1")
    assert nasx.complexity(spec).params == inception_resnet_v1_params() == n_params(nasx.build(spec))
    assert inception_resnet_v1_params() == 22_756_328
    # Fig. 15's grids: 35x35x256 after the stem, 17x17x896 after Reduction-A, 8x8x1792 before the pool
    model = nasx.build(spec).eval()
    shapes = {}
    for name in ("stem", "s1", "s2", "s4", "s5"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.update({name: tuple(o.shape)}))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 299, 299)).shape == (1, 1000)
    assert shapes == {"stem": (1, 256, 35, 35), "s1": (1, 256, 35, 35), "s2": (1, 896, 17, 17),
                      "s4": (1, 1792, 8, 8), "s5": (1, 1792, 8, 8)}
    assert [s.block.scale for s in spec.stages if s.block.residual] == [0.17, 0.10, 0.20]
    assert [s.depth for s in spec.stages] == [5, 1, 10, 1, 5] and spec.head.dropout == 0.2  # keep 0.8
    # BN after every conv but the linear 1x1s before the sums (20 of them, with a bias); no BN on the sums
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert sum(c.bias is not None for c in convs) == 20 == len(convs) - len(norms)


# Simonyan & Zisserman 2015, Table 2: parameters in millions for configurations A, A-LRN, B, C, D, E
VGG_TABLE_2 = {"vgg11": 133, "vgg11_lrn": 133, "vgg13": 133, "vgg16_c": 134, "vgg16": 138, "vgg19": 144}


@pytest.mark.parametrize("name, millions", list(VGG_TABLE_2.items()))
def test_vgg_configurations_match_table_2(name, millions):
    assert round(nasx.complexity(name).params / 1e6) == millions


def test_vgg_c_has_1x1_convs_in_its_last_three_stages_and_a_lrn_has_one_lrn():
    kernels = [m.kernel_size[0] for m in nasx.build("vgg16_c").modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [3, 3, 3, 3, 3, 3, 1, 3, 3, 1, 3, 3, 1]
    # D's third 3x3 convs of stages 3-5 become 1x1: 8 w^2 weights fewer each
    assert nasx.complexity("vgg16").params - nasx.complexity("vgg16_c").params == 8 * (256**2 + 2 * 512**2)
    model = nasx.build("vgg11_lrn")
    assert [type(m).__name__ for m in model.s1.b1] == ["Conv2d", "ReLU", "LocalResponseNorm"]


def test_auxiliary_classifier_trains_only_and_counts_parameters_not_flops():
    on, off = nasx.zoo.get("inception_v3_aux"), nasx.zoo.get("inception_v3")
    assert nasx.complexity(on).params - nasx.complexity(off).params == 3_326_696
    assert nasx.complexity(on).flops == nasx.complexity(off).flops
    model = nasx.build(on, num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 299, 299)).shape == (1, 5)
    assert model.aux_logits == []
    with pytest.raises(nasx.SpecError, match="stage 6.aux"):
        on.replace(resolution=257)  # Mixed-6e's 14x14 output: the 5x5/3 pool leaves 4x4 for the 5x5 conv


def googlenet_aux_params(w_in: int, classes: int = 1000) -> int:
    """torchvision's GoogLeNet InceptionAux by hand: 1x1 conv 128 + BN, FC 128*4*4 -> 1024, FC 1024 -> classes."""
    return w_in * 128 + 2 * 128 + (2048 * 1024 + 1024) + (1024 * classes + classes)


def test_googlenet_auxiliary_classifiers_follow_4a_and_4d_train_only_and_count_parameters_not_flops():
    on, off = nasx.zoo.get("googlenet_aux"), nasx.zoo.get("googlenet")
    assert googlenet_aux_params(512) == 3_188_968 and googlenet_aux_params(528) == 3_191_016
    assert nasx.complexity(on).params - nasx.complexity(off).params == googlenet_aux_params(512) + googlenet_aux_params(528)
    assert nasx.complexity(on).flops == nasx.complexity(off).flops
    assert [i for i, s in enumerate(on.stages, start=1) if s.aux is not None] == [3, 6]  # inception4a, inception4d
    assert on.replace(stages=tuple(dataclasses.replace(s, aux=None) for s in on.stages)) == off
    model = nasx.build(on, num_classes=5)
    assert [n for n, _ in model.named_children()][3:8] == ["s3", "aux3", "s4", "s5", "s6"]
    x = torch.zeros(2, 3, 224, 224)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 5) and model.aux_logits == []
        model.train()(x)
    assert [tuple(a.shape) for a in model.aux_logits] == [(2, 5), (2, 5)]
    on.replace(resolution=31)  # the adaptive pool fits any grid: as small as googlenet goes

