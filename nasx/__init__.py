"""nasx: a neural-architecture design-space explorer for PyTorch.

    spec = nasx.zoo.get("resnext50_32x4d")      # or any NetSpec
    model = nasx.build(spec, num_classes=10)    # a plain torch.nn.Module
    cx = nasx.complexity(spec, resolution=224)  # flops (fvcore's count), params, acts; no model built
    study = nasx.open_study("resnext")          # a stored study: .trials_frame(), .front(), .nets()

The modules behind them live in `nasx.net` (`nasx.net.spec`, `nasx.net.build`, `nasx.net.complexity`,
`nasx.net.zoo`), so these names stay the functions. They are imported on first use (PEP 562), so that
`import nasx.net.spec` or `nasx count` never pays for torch, which only `nasx.build` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers and editors
    from .errors import NasxError
    from .net import zoo
    from .net.build import build
    from .net.complexity import Complexity, complexity
    from .net.spec import (AggregatedBlock, AuxHead, BlockPath, Conv, Head, InceptionBlock, MultiBranchBlock, NetSpec,
                           PlainBlock, Pool, ResidualBlock, SpecError, Stage, Stem, load_spec)
    from .study.store import StoredStudy, open_study

__version__ = "0.1.0"

# public name -> (module under nasx, attribute; None for the module itself)
_PUBLIC: dict[str, tuple[str, str | None]] = {
    "NasxError": ("errors", "NasxError"),
    "zoo": ("net.zoo", None),
    "build": ("net.build", "build"),
    "Complexity": ("net.complexity", "Complexity"),
    "complexity": ("net.complexity", "complexity"),
    "open_study": ("study.store", "open_study"),
    "StoredStudy": ("study.store", "StoredStudy"),
    **{name: ("net.spec", name) for name in (
        "AggregatedBlock", "AuxHead", "BlockPath", "Conv", "Head", "InceptionBlock", "MultiBranchBlock", "NetSpec",
        "PlainBlock", "Pool", "ResidualBlock", "SpecError", "Stage", "Stem", "load_spec")},
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562) and keep the name here."""
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'nasx' has no attribute {name!r}") from None
    value = importlib.import_module(f"{__name__}.{module}")
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
