"""The aggregated block (one grouped conv, ResNeXt Fig. 3c) computes the same function as the explicit
`cardinality`-path form (Fig. 3a) once weights are tied."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasx.net.build import BottleneckTransform, ResBlock, make_block
from nasx.net.spec import AggregatedBlock, Stage


def bn_eval(x: torch.Tensor, bn: torch.nn.BatchNorm2d, channels: slice) -> torch.Tensor:
    """The eval-mode batch norm of `bn` restricted to `channels`."""
    return F.batch_norm(x, bn.running_mean[channels], bn.running_var[channels], bn.weight[channels],
                        bn.bias[channels], training=False, eps=bn.eps)


def explicit_paths(block: ResBlock, x: torch.Tensor, cardinality: int, group_width: int) -> torch.Tensor:
    """Fig. 3a: sum over `cardinality` paths of 1x1 (w_in -> gw), 3x3 (gw -> gw), 1x1 (gw -> w_out), then BN, + shortcut, ReLU."""
    f: BottleneckTransform = block.f
    total = 0
    for path in range(cardinality):
        ch = slice(path * group_width, (path + 1) * group_width)
        y = F.relu(bn_eval(F.conv2d(x, f.a.weight[ch]), f.a_bn, ch))
        y = F.relu(bn_eval(F.conv2d(y, f.b.weight[ch], stride=f.b.stride, padding=1), f.b_bn, ch))
        total = total + F.conv2d(y, f.c.weight[:, ch])  # the paths' 1x1 outputs are summed
    out = bn_eval(total, f.c_bn, slice(None))
    shortcut = x if block.proj is None else block.proj(x)
    return F.relu(shortcut + out)


@pytest.mark.parametrize("cardinality, group_width, w_in, w_out, stride", [(32, 4, 256, 256, 1), (8, 3, 16, 64, 2), (4, 16, 64, 32, 1)])
def test_grouped_conv_equals_explicit_paths(cardinality, group_width, w_in, w_out, stride):
    torch.manual_seed(0)
    stage = Stage(depth=1, width=w_out, block=AggregatedBlock(cardinality=cardinality, group_width=group_width), stride=stride)
    block = make_block(w_in, w_out, stride, stage)
    for bn in block.modules():  # non-trivial running statistics and affine parameters
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)
    block.eval()
    assert block.f.b.groups == cardinality and block.f.b.in_channels == cardinality * group_width
    x = torch.randn(2, w_in, 9, 9)
    with torch.no_grad():
        grouped = block(x)
        explicit = explicit_paths(block, x, cardinality, group_width)
    assert grouped.shape == explicit.shape
    torch.testing.assert_close(grouped, explicit, rtol=1e-4, atol=1e-5)
    # and the check can fail: breaking one path's weights breaks the equality
    with torch.no_grad():
        block.f.b.weight[:group_width] += 1.0
        assert not torch.allclose(block(x), explicit, atol=1e-3)
