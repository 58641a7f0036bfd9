"""nasx: a neural-architecture design-space explorer for PyTorch.

    spec = nasx.zoo.get("resnext50_32x4d")      # or any NetSpec
    model = nasx.build(spec, num_classes=10)    # a plain torch.nn.Module
    cx = nasx.complexity(spec, resolution=224)  # flops (fvcore's count), params, acts; no model built
"""

from .build import build  # the function; binding it after the submodule import keeps nasx.build callable
from .complexity import Complexity, complexity
from .spec import (
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
    load_spec,
)
from . import zoo

__version__ = "0.1.0"


__all__ = [
    "AggregatedBlock", "Complexity", "Head", "InceptionBlock", "NetSpec", "PlainBlock", "Pool",
    "ResidualBlock", "SpecError", "Stage", "Stem", "build", "complexity", "load_spec", "zoo",
]
