"""nasx: a neural-architecture design-space explorer for PyTorch.

    spec = nasx.zoo.get("resnext50_32x4d")      # or any NetSpec
    model = nasx.build(spec, num_classes=10)    # a plain torch.nn.Module
    cx = nasx.complexity(spec, resolution=224)  # flops (fvcore's count), params, acts; no model built

The modules behind them live in `nasx.net` (`nasx.net.spec`, `nasx.net.build`, `nasx.net.complexity`,
`nasx.net.zoo`), so these names stay the functions.
"""

from .errors import NasxError
from .net import zoo
from .net.build import build
from .net.complexity import Complexity, complexity
from .net.spec import (
    AggregatedBlock,
    AuxHead,
    BlockPath,
    Conv,
    Head,
    InceptionBlock,
    MultiBranchBlock,
    NetSpec,
    PlainBlock,
    Pool,
    ResidualBlock,
    SpecError,
    Stage,
    Stem,
    load_spec,
)

__version__ = "0.1.0"


__all__ = [
    "AggregatedBlock", "AuxHead", "BlockPath", "Complexity", "Conv", "Head", "InceptionBlock", "MultiBranchBlock",
    "NasxError", "NetSpec", "PlainBlock", "Pool", "ResidualBlock", "SpecError", "Stage", "Stem", "build", "complexity",
    "load_spec", "zoo",
]
