"""One number formatter and parser (nasx.units): the strings pages, tables and messages print."""

from __future__ import annotations

import pytest

from nasx.units import exact, human, parse_count


def test_human_keeps_three_significant_digits_or_as_many_as_a_tick_needs():
    assert [human(x) for x in (12, 999, 1234, 1_234_567, 2.5e9, 4e12)] == ["12", "999", "1.23k", "1.23M", "2.5G", "4T"]
    assert human(-1_500_000) == "-1.5M" and human(0.25) == "0.25"
    assert human(2_500_000, None) == "2.5M" and human(1_234_567, None) == "1.23457M"
    assert human(2.5e15) == "2,500T"  # beyond the largest unit: the whole number of it


def test_exact_writes_a_unit_only_where_it_is_exact():
    assert exact(10_000_000) == "10M" and exact(2 * 10**9) == "2G" and exact(500_000) == "500k"
    assert exact(12_345) == 12_345 and exact(1_500_000) == "1500k"


def test_parse_count_reads_what_human_and_exact_write():
    assert parse_count("150M") == 150_000_000 and parse_count("1.2G") == 1_200_000_000 and parse_count(42) == 42
    assert all(parse_count(exact(n)) == n for n in (10_000_000, 12_345, 1_500_000))
    with pytest.raises(ValueError):
        parse_count("12Q")
