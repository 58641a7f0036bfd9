"""Design spaces: parse a space file (`parse`), draw and solve its members in a band (`sampling`), and edit its
mapping into restrictions (`edit`). This face re-exports parse's public names (`from nasx.space import load_space`)."""

from .parse import (SPACES_DIR, SPACES_PATH_VAR, Dist, Membership, PerStage, RegNetRule, Space, SpaceError, known_spaces,
                    load_space, mapping_hash, overlay, parse_band, parse_count, parse_space, shipped_spaces)

__all__ = ["SpaceError", "Dist", "PerStage", "RegNetRule", "Space", "Membership", "SPACES_DIR", "SPACES_PATH_VAR",
           "load_space", "shipped_spaces", "known_spaces", "parse_count", "parse_band", "parse_space", "overlay",
           "mapping_hash"]
