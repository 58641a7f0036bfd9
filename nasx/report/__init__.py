"""Reports from stored records, never training: tables (`tables`), figures (`figures`), the study page and
the one HTML style (`page`), the ablation page (`ablation`), the refinement page (`refine`).

Names are imported on first use (PEP 562): `nasx export` reads a study through `tables` without
importing matplotlib, which only the pages' figures need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ablation import write_ablation_report
    from .page import default_out, write_report
    from .refine import write_refine_report
    from .tables import ReportError, StudyData, ZooRef, best_trial, pareto_table, trials_table

# public name -> its module in this package
_PUBLIC = {"write_ablation_report": "ablation", "default_out": "page", "write_report": "page",
           "write_refine_report": "refine",
           **{name: "tables" for name in ("ReportError", "StudyData", "ZooRef", "best_trial", "pareto_table",
                                          "trials_table")}}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562) and keep the name here."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value
