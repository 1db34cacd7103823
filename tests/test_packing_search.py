"""The pure packing's lower bound and ejection search (`placement.solvers.packing_search`)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from placement.check import check
from placement.model import Guest, Host, Problem
from placement.plan import Status
from placement.solvers import SolveOptions, solve
from placement.solvers.budget import Budget
from placement.solvers.packing_search import Packing, eject, lower_bound, packing_of, used_bins

DETERMINISTIC = SolveOptions(time_limit_s=2, workers=1, deterministic=True)


def packing(capacity: tuple[int, ...], sizes: list[tuple[int, ...]]) -> Packing:
    return Packing(
        sizes=np.array(sizes, dtype=np.int64).reshape(len(sizes), len(capacity)),
        capacity=np.array(capacity, dtype=np.int64),
    )


def fits(case: Packing, bin_of: list[int]) -> bool:
    """Every bin of `bin_of` within the capacity in every dimension."""
    for b in set(bin_of):
        load = case.sizes[[i for i, a in enumerate(bin_of) if a == b]].sum(axis=0)
        if (load > case.capacity).any():
            return False
    return True


def optimum(case: Packing) -> int:
    """The fewest bins, by trying every assignment (tiny instances only)."""
    n = case.num_items
    for bins in range(1, n + 1):
        for bin_of in itertools.product(range(bins), repeat=n):
            if bin_of[0] == 0 and fits(case, list(bin_of)):
                return bins
    return n


def random_case(rng: random.Random) -> Packing:
    """Up to seven items of two or three dimensions on a capacity of 10."""
    dims = rng.choice((2, 3))
    sizes = [tuple(rng.randint(1, 9) for _ in range(dims)) for _ in range(rng.randint(3, 7))]
    return packing((10,) * dims, sizes)


def test_three_items_no_two_of_which_fit_together_need_three_bins() -> None:
    # (6,5)+(5,6) and each with (5,5) overflow some dimension, though no dimension holds
    # two items over half the capacity: only the clique bound sees the third bin (L1 and
    # L2 on either dimension say 2).
    case = packing((10, 10), [(6, 5), (5, 6), (5, 5)])
    assert lower_bound(case) == optimum(case) == 3


def test_l2_counts_items_over_half_the_capacity() -> None:
    # One dimension: three items of 6 need three bins though their total needs two.
    case = packing((10,), [(6,), (6,), (6,), (2,)])
    assert lower_bound(case) == optimum(case) == 3


@pytest.mark.parametrize("seed", range(25))
def test_bound_optimum_and_search_are_in_order_on_tiny_instances(seed: int) -> None:
    rng = random.Random(seed)
    case = random_case(rng)
    best = optimum(case)
    assert lower_bound(case) <= best
    one_each = list(range(case.num_items))  # one item per bin: always feasible
    found, log = eject(case, one_each, Budget.of(DETERMINISTIC), lower_bound(case), seed)
    assert fits(case, found)
    assert best <= used_bins(found) <= case.num_items
    assert log.bins_before == case.num_items
    assert log.bins_after == used_bins(found)
    # Seven items or fewer: the search reaches the optimum well within its budget.
    assert used_bins(found) == best


def test_the_search_stops_at_the_lower_bound() -> None:
    case = packing((10,), [(5,)] * 6)
    found, log = eject(case, list(range(6)), Budget.of(DETERMINISTIC), lower=3)
    assert used_bins(found) == 3
    assert fits(case, found)
    # It stops there: a fourth pair would be no packing, and 2 bins are below the bound.
    assert log.bins_after == 3


def triplets(count: int, seed: int) -> Problem:
    """`count` triplets of items that fill a 100 x 100 bin exactly (the optimum is
    `count` bins), shuffled."""
    rng = random.Random(seed)
    sizes = []
    for _ in range(count):
        a, b = rng.randint(20, 45), rng.randint(20, 45)
        c, d = rng.randint(20, 45), rng.randint(20, 45)
        sizes += [(a, c), (b, d), (100 - a - b, 100 - c - d)]
    rng.shuffle(sizes)
    return Problem(
        hosts=[Host(name=f"h{k:02d}", capacity={"r0": 100, "r1": 100}) for k in range(2 * count)],
        guests=[
            Guest(name=f"g{i:02d}", demand={"r0": r0, "r1": r1}) for i, (r0, r1) in enumerate(sizes)
        ],
        objective=["placed", "consolidate"],
    )


def test_the_lean_packing_plan_is_checked_and_bounded() -> None:
    problem = triplets(8, seed=3)
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=3, workers=2, deterministic=True))
    assert check(problem, plan).ok
    assert plan.statistics.lean == "packing"
    stage = plan.stage("consolidate")
    assert stage is not None
    assert stage.bound is not None
    # The bound is the compact packing's own (the triplets fill their bins: L1 is 8).
    assert stage.bound == lower_bound(packing_of(problem)) == 8
    assert 8 <= stage.value <= 2 * 8
    assert (plan.status is Status.OPTIMAL) == (stage.value == 8)


def test_the_search_repeats_in_deterministic_mode() -> None:
    problem = triplets(10, seed=5)
    case = packing_of(problem)
    one_each = list(range(case.num_items))
    # A budget the search does not use up (it stalls first): a wall backstop on a busy
    # machine would cut it, and a cut search does not repeat.
    budget = SolveOptions(time_limit_s=60, workers=1, deterministic=True)
    runs = [eject(case, one_each, Budget.of(budget), lower_bound(case), seed=4) for _ in range(2)]
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]
    assert fits(case, runs[0][0])
    assert used_bins(runs[0][0]) < case.num_items


def first_fit(case: Packing, order: list[int]) -> list[int]:
    bin_of = [0] * case.num_items
    loads: list[np.ndarray] = []
    for i in order:
        size = case.sizes[i]
        b = next((b for b, load in enumerate(loads) if (load + size <= case.capacity).all()), None)
        if b is None:
            b = len(loads)
            loads.append(np.zeros_like(case.capacity))
        loads[b] = loads[b] + size
        bin_of[i] = b
    return bin_of


def test_bins_of_many_small_items_eject_by_pairs_or_single_items() -> None:
    # Over a hundred items of 1-6 in a bin of 1,000: the search's tables of item sets
    # fall back to pairs and single items there; its packing stays feasible.
    rng = random.Random(7)
    sizes = [(rng.randint(1, 6),) for _ in range(500)] + [
        (rng.randint(300, 600),) for _ in range(20)
    ]
    case = packing((1000,), sizes)
    order = list(range(case.num_items))
    rng.shuffle(order)
    start = first_fit(case, order)
    found, _ = eject(case, start, Budget.of(DETERMINISTIC), lower_bound(case))
    assert fits(case, found)
    assert lower_bound(case) <= used_bins(found) <= used_bins(start)
    assert max(found.count(b) for b in set(found)) > 99  # some bin holds over 99 items
