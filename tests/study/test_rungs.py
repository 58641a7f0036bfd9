"""Promotions of the successive-halving rungs: the top 1/eta by non-dominated sorting of (error, FLOPs) with a
crowding-distance tie-break, each net at most once, failed nets never."""

import math

import numpy as np
import pytest

from nasx.study.rungs import RungResult, crowding_distance, due_promotions, promotion_order
from nasx.train.budget import Budget, BudgetError, Ladder

# A, B, C are non-dominated; D is dominated by A only; E by B and D (so its rank is 2)
NETS = [RungResult("A", 0.30, 10e6), RungResult("B", 0.20, 20e6), RungResult("C", 0.25, 15e6),
        RungResult("D", 0.35, 12e6), RungResult("E", 0.40, 30e6)]


def keys(results, order):
    return [results[i].key for i in order]


def test_order_is_pareto_rank_then_crowding_then_error():
    # rank 0: A and B are the ends of the front (infinite crowding), B first by error; then C; D rank 1; E rank 2
    assert keys(NETS, promotion_order(NETS)) == ["B", "A", "C", "D", "E"]
    # the order does not depend on the order the results arrived in
    rng = np.random.default_rng(0)
    for _ in range(5):
        shuffled = [NETS[i] for i in rng.permutation(len(NETS))]
        assert keys(shuffled, promotion_order(shuffled)) == ["B", "A", "C", "D", "E"]


def test_quota_is_floor_n_over_eta_and_each_net_once():
    assert due_promotions(NETS, set(), eta=3) == ["B"]          # 5 // 3 = 1
    assert due_promotions(NETS, {"B"}, eta=3) == []             # B is promoted already, quota still 1
    six = NETS + [RungResult("F", 0.50, 25e6)]
    assert due_promotions(six, {"B"}, eta=3) == ["A"]          # 6 // 3 = 2: the second best is due
    assert due_promotions(six, set(), eta=2) == ["B", "A", "C"]
    assert due_promotions(NETS[:2], set(), eta=3) == []         # fewer than eta results: nothing yet


def test_a_later_better_net_takes_the_quota_but_a_promotion_stands():
    # ASHA: a promotion is never taken back; a better late net is promoted when the quota grows
    first = [RungResult("X", 0.30, 10e6), RungResult("Y", 0.50, 10e6), RungResult("Z", 0.60, 10e6)]
    assert due_promotions(first, set(), eta=3) == ["X"]
    later = first + [RungResult("W", 0.10, 10e6), RungResult("V", 0.70, 10e6), RungResult("U", 0.80, 10e6)]
    assert due_promotions(later, {"X"}, eta=3) == ["W"]


def test_failed_results_are_last_and_never_promoted():
    results = [RungResult("bad", math.nan, 1e6), RungResult("ok", 0.5, 1e6)]
    assert keys(results, promotion_order(results)) == ["ok", "bad"]
    assert due_promotions([RungResult("bad", math.nan, 1e6)] * 4, set(), eta=2) == []


def test_crowding_distance_matches_nsga2_by_hand():
    pts = np.array([[0.1, 3.0], [0.2, 2.0], [0.4, 1.0], [0.5, 0.0]])
    d = crowding_distance(pts)
    assert math.isinf(d[0]) and math.isinf(d[3])
    # point 1: (0.4 - 0.1) / 0.4 + (3 - 1) / 3; point 2: (0.5 - 0.2) / 0.4 + (2 - 0) / 3
    assert d[1] == pytest.approx(0.75 + 2 / 3) and d[2] == pytest.approx(0.75 + 2 / 3)


def test_ladder_checks_and_retrain_overhead():
    ladder = Ladder.geometric(Budget(1, 1.0), eta=3, rungs=3)
    assert ladder.work() == pytest.approx((1 / 9, 1 / 3, 1.0)) and ladder.top == 2 and len(ladder) == 3
    assert ladder.retrain_overhead() == pytest.approx(13 / 9)
    # the --schedule asha ladder: shares to 3 significant digits, so its names read as flags
    asha = Ladder.geometric(Budget(1, 0.5, batch_size=64), 3, digits=3)
    assert asha.names == "e1-f0.0556-b64,e1-f0.167-b64,e1-f0.5-b64"
    # work at the data's side: a rung at 24 px of a 32 px dataset costs (24/32)^2 of the same rung at 32 px
    sides = Ladder.parse("e1-f0.5-r24,e1-f0.5", eta=2)
    assert sides.work(32) == pytest.approx((0.5625, 1.0)) and sides.eta == 2
    for bad in [dict(budgets=(Budget(1, 1.0),)), dict(budgets=(Budget(1, 0.5), Budget(1, 0.25))),
                dict(budgets=(Budget(1, 0.1), Budget(1, 1.0)), eta=1)]:
        with pytest.raises(BudgetError):
            Ladder(**bad)


def test_the_predicted_ranking_falls_back_to_the_rung_error_with_few_top_rung_results():
    from nasx.study.record import TrialRecord
    from nasx.study.rungs import MIN_PAIRS, next_promotion_ranked, rung_standing
    from nasx.train.budget import Ladder

    ladder = Ladder.parse("e1-f0.1,e1-f0.9", eta=3)
    low = [TrialRecord.of(i, "COMPLETE", values=(0.5 + 0.01 * i, 1e6), spec_id=f"n{i}", flops=10**6 + i, rung=0)
           for i in range(12)]
    top = [TrialRecord.of(100 + i, "COMPLETE", values=(0.7, 1e6), spec_id=f"n{i}", flops=10**6 + i, rung=1)
           for i in range(MIN_PAIRS - 1)]
    standing = rung_standing(low + top, ladder, 0, predict=True)
    assert standing.predicted is None
    assert standing.basis == f"error at the rung (prediction needs {MIN_PAIRS} nets at both rungs, {MIN_PAIRS - 1} so far)"
    assert next_promotion_ranked(low + top, ladder, True)[0] == next_promotion_ranked(low + top, ladder, False)[0]
    more = top + [TrialRecord.of(100 + MIN_PAIRS - 1, "COMPLETE", values=(0.7, 1e6), spec_id=f"n{MIN_PAIRS - 1}",
                                 flops=10**6, rung=1)]
    assert rung_standing(low + more, ladder, 0, predict=True).basis == \
        f"predicted top-rung error ({MIN_PAIRS} nets at both rungs)"


def test_the_predicted_ranking_promotes_the_truly_better_nets_when_structure_predicts_the_top():
    """Planted: the top error follows depth (structure) closely; the rung's error is the top's plus noise twice
    the spread depth explains. Over 40 draws the nets promoted by prediction are truly better than those promoted
    by the rung error in most draws, and on average."""
    from nasx.study.rungs import due_promotions, predict_top_errors

    rng = np.random.default_rng(0)
    wins, gain = 0, []
    for _ in range(40):
        def nets(n):
            depth = rng.integers(2, 20, n)
            top = 0.5 - 0.01 * depth + rng.normal(0, 0.01, n)
            rung = top + 0.1 + rng.normal(0, 0.05, n)
            return [RungResult(f"{rng.integers(1 << 30)}", float(e), 1e6, (float(d), 3.0, 4.0, 6.0))
                    for e, d in zip(rung, depth)], top
        seen, seen_top = nets(12)
        fresh, truth = nets(30)
        pairs = list(zip(seen, seen_top))
        predicted = predict_top_errors(fresh, pairs)
        by_truth = dict(zip((r.key for r in fresh), truth))
        plain = np.mean([by_truth[k] for k in due_promotions(fresh, set(), 3)])
        smart = np.mean([by_truth[k] for k in due_promotions(fresh, set(), 3, predicted)])
        wins += smart < plain
        gain.append(plain - smart)
    assert wins >= 30 and np.mean(gain) > 0.01, (wins, np.mean(gain))
