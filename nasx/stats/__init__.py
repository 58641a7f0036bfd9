"""Pure statistics on result tables: Pareto fronts (`pareto`), error EDFs, KS and its permutation tests (`edf`), the
complexity-adjusted shift test (`shift`), rank
agreement (`rank`), t intervals and trend verdicts (`intervals`)."""

from .edf import *  # noqa: F401,F403
from .edf import __all__ as _edf
from .intervals import *  # noqa: F401,F403
from .intervals import __all__ as _intervals
from .pareto import *  # noqa: F401,F403
from .pareto import __all__ as _pareto
from .rank import *  # noqa: F401,F403
from .rank import __all__ as _rank
from .shift import *  # noqa: F401,F403
from .shift import __all__ as _shift

__all__ = [*_pareto, *_edf, *_rank, *_intervals, *_shift]
