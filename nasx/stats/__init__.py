"""Pure statistics on result tables: Pareto fronts (`pareto`), error EDFs, KS and its permutation tests (`edf`), rank
agreement (`rank`), t intervals and trend verdicts (`intervals`)."""

from .edf import *  # noqa: F401,F403
from .edf import __all__ as _edf
from .intervals import *  # noqa: F401,F403
from .intervals import __all__ as _intervals
from .pareto import *  # noqa: F401,F403
from .pareto import __all__ as _pareto
from .rank import *  # noqa: F401,F403
from .rank import __all__ as _rank

__all__ = [*_pareto, *_edf, *_rank, *_intervals]
