"""The base of every error nasx reports to a user as one line (bad spec, space, data, study, report)."""


class NasxError(Exception):
    """A bad input or setting, found before (or instead of) doing work; the message is one line."""
