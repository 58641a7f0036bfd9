"""`Budget`: a partial budget (the parts a user gave), filling it, and the stored form of both."""

from __future__ import annotations

import pytest

from nasx.train.budget import Budget, BudgetError, Ladder
from nasx.train.trainer import train


def test_a_partial_budget_names_its_missing_parts_and_cannot_be_costed():
    partial = Budget(None, 0.5, resolution=24)
    assert not partial.whole and Budget(1, 0.5).whole and Budget().whole  # Budget() stays e5-f1
    assert partial.name == "e?-f0.5-r24" and Budget(None, None, batch_size=64).name == "e?-f?-b64"
    assert partial.describe() == "? epochs on 0.5 of the training split at 24 px"
    assert partial.batch_for(cuda=False) == 128  # the batch needs no epochs
    with pytest.raises(BudgetError, match=r"^budget e\?-f0\.5-r24: epochs and fraction are not chosen yet"):
        partial.cost(32)
    with pytest.raises(BudgetError, match="not chosen yet"):
        Ladder.geometric(partial)
    with pytest.raises(BudgetError, match=r"^budget e3-f\?: epochs and fraction are not chosen yet"):
        train("resnet20", None, Budget(3, None))  # refused before the data is looked at
    assert Budget(**partial.to_dict()) == partial and partial.to_dict() == {"epochs": None, "fraction": 0.5,
                                                                            "resolution": 24}


def test_filled_takes_only_the_parts_a_budget_leaves_unset():
    partial = Budget(3, None, batch_size=64)
    assert partial.filled(epochs=5, fraction=1.0, batch_size=512) == Budget(3, 1.0, batch_size=64)
    assert Budget(1, 0.5).filled(resolution=None, batch_size=128) == Budget(1, 0.5, batch_size=128)
    assert Budget.given() is None and Budget.given(batch_size=64) == Budget(None, None, batch_size=64)
    with pytest.raises(BudgetError, match="fraction 1.5"):
        Budget.given(fraction=1.5)
