"""Sorting through temporary files gives what ``sorted`` gives, equal keys in their order."""

from __future__ import annotations

import random

import pytest

from fsm_server.reports.spill import sorted_payloads


@pytest.mark.parametrize("run", [1, 3, 7, 1000])
def test_spilled_runs_merge_to_a_stable_sort(run: int) -> None:
    rng = random.Random(15)
    # few distinct keys, so most items tie and only a stable merge keeps their order
    items = [
        ((rng.random() < 0.5, float(rng.randint(0, 3)), f"d{rng.randint(0, 2)}"), [n, f"row {n}"])
        for n in range(200)
    ]
    expected = [payload for _, payload in sorted(items, key=lambda item: item[0])]
    assert list(sorted_payloads(iter(items), run=run)) == expected


def test_nothing_to_sort_gives_nothing() -> None:
    assert list(sorted_payloads([], run=2)) == []
