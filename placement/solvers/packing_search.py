"""Vector bin packing on its own arrays: a lower bound and an ejection search.

The lean path of a pure packing (`cpsat/pure.py`) hands its best seed here before the
stage loop:

- **the lower bound first** (`lower_bound`): the largest of L1 (total size per
  dimension over the capacity), Martello and Toth's L2 per dimension, and greedy cliques
  of pairwise incompatible items (no two fit in one bin together). A packing that meets
  it is proven optimal and the solve stops there.
- **the ejection search** (`eject`), after the consistent neighbourhood search of
  Buljubasic and Vasquez for vector packing, reduced to its core: to find a packing in
  one bin fewer, the lightest bin's items go to a pool; each step puts a pool item into
  the bin where it ejects the lightest set of items (none when it fits), and the ejected
  items join the pool; items placed in the last few steps stay (tabu). An empty pool is
  one bin fewer, and the search goes on from there. An item's weight is the square of its
  summed share of the bin, so that a large item is worth ejecting several small ones; in
  a second phase it also grows a little each time the item is ejected. Each phase ends
  once it has not found a bin for a while, and the search gives its time back.

On the vector-packing sample this packed better than CP-SAT on a compact model in the
same time (docs/optimiser.md has the numbers). Sizes are integers as in the problem; a
dimension is a resource, a bin a host (every host of a pure packing is the same,
`pure._plain_packing`).
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from placement.model import Problem
from placement.solvers.budget import Budget

IntArray = npt.NDArray[np.int64]

# An item's weight: its summed share of the bin in thousandths, squared (the square found
# one bin more than the plain share on class6_120_3_1 and the cube one fewer, measured in
# the session that added this).
_SIZE_SCALE = 1000
# Work charged per ejection step, fixed and per bin, in deterministic mode (1.0, 1.3 and
# 2.3 ms a step on 17, 29 and 53 bins of 120, 60 and 120 items, a shared 2-core machine),
# how many steps an item stays in a bin before it may be ejected again, and how many one
# step ejects at most.
_STEP_S_FIXED = 3e-4
_STEP_S_PER_BIN = 4e-5
_TABU_STEPS = 7
_MAX_EJECTED = 3
# Each time an item is ejected its weight grows by a fraction of the mean weight (as the
# consistent neighbourhood search adapts its weights): an item that keeps coming back to
# the pool is soon worth keeping, and the search moves on. The search runs a phase with
# each fraction in turn, the next once the last stalls: with 1/16 bins came sooner on
# class6, class7_120 and class9 and one more on class7_120_5_3 (54), but class7_60_10_2
# and _3 lost the bin the plain weights find within 110 steps; 1/64 lost it on _3, and
# 1/4 lost bins on class6_120_3_1 and class7_60_10_2.
_EJECTION_BUMPS = (0.0, 1 / 16)
# Steps without a bin fewer after which the search gives the rest of its time back to the
# stage loop: on the sample most bins it found came within 800 steps of the one before
# (one after 1,800, one after 2,400), and on class1 and class4 the stage loop did better.
_STALL_STEPS = 1500
# The clique bound's items x items table is built up to this many items.
_CLIQUE_MAX_ITEMS = 2000
# An ejection set's 0/1 table (sets x items of a bin, cached per item count) is kept
# under this many entries: sets of three up to 41 items in a bin, of two up to 99, single
# items beyond.
_MAX_SUBSET_ENTRIES = 500_000
# Now and then a step takes a random pool item rather than the heaviest.
_RANDOM_PICK = 0.3


@attrs.frozen
class Packing:
    """Item sizes (`sizes`, items x dimensions, problem order of the guests) and the one
    bin capacity per dimension (`capacity`)."""

    sizes: IntArray
    capacity: IntArray

    @property
    def num_items(self) -> int:
        return int(self.sizes.shape[0])


def packing_of(problem: Problem) -> Packing:
    """The compact packing of a pure packing problem (identical hosts, every guest free
    to use any): the first host's capacity and each guest's demand, per resource."""
    resources = problem.resources
    capacity = problem.hosts[0].capacity
    return Packing(
        sizes=np.array(
            [[g.demand.get(r, 0) for r in resources] for g in problem.guests], dtype=np.int64
        ).reshape(len(problem.guests), len(resources)),
        capacity=np.array([capacity.get(r, 0) for r in resources], dtype=np.int64),
    )


# --- lower bounds ------------------------------------------------------------------------


def lower_bound(packing: Packing) -> int:
    """Bins every packing needs: the best of L1, L2 per dimension and the clique bound."""
    if packing.num_items == 0:
        return 0
    return max(
        max(_l1(packing.sizes[:, k], int(c)) for k, c in enumerate(packing.capacity)),
        max(_l2(packing.sizes[:, k], int(c)) for k, c in enumerate(packing.capacity)),
        _clique(packing),
    )


def _l1(sizes: IntArray, capacity: int) -> int:
    total = int(sizes.sum())
    return 0 if total == 0 else math.ceil(total / max(capacity, 1))


def _l2(sizes: IntArray, capacity: int) -> int:
    """Martello and Toth's L2 on one dimension: for each threshold k <= capacity / 2, the
    items above capacity - k each need a bin of their own, the items in (capacity / 2,
    capacity - k] too, and the items of at least k fill what those leave, and more bins.
    Every threshold at once, on prefix sums of the sorted sizes."""
    if capacity <= 0:
        return 0
    values = np.sort(sizes.astype(np.int64))
    prefix = np.concatenate(([0], np.cumsum(values)))
    half = capacity / 2
    thresholds = np.unique(np.concatenate(([0], values[values <= half])))

    def above(limit: npt.NDArray[np.float64]) -> IntArray:
        """How many sizes exceed each limit."""
        return len(values) - np.searchsorted(values, limit, side="right")

    def below(limit: npt.NDArray[np.float64]) -> IntArray:
        """The index of the first size >= each limit."""
        return np.searchsorted(values, limit, side="left")

    big = above(capacity - thresholds)
    over_half = above(np.full(len(thresholds), half))
    middle = over_half - big
    first_middle, first_big = len(values) - over_half, len(values) - big
    middle_sum = prefix[first_big] - prefix[first_middle]
    small_sum = prefix[first_middle] - prefix[below(thresholds)]
    room = middle * capacity - middle_sum
    extra = np.maximum(0, -((room - small_sum) // capacity))
    return int((big + middle + extra).max())


def incompatible(packing: Packing) -> npt.NDArray[np.bool_]:
    """items x items: whether the two exceed the capacity together in some dimension."""
    n = packing.num_items
    clash = np.zeros((n, n), dtype=bool)
    for k, capacity in enumerate(packing.capacity):
        column = packing.sizes[:, k]
        clash |= column[:, None] + column[None, :] > capacity
    np.fill_diagonal(clash, False)
    return clash


def _clique(packing: Packing) -> int:
    """The largest of a few greedy cliques of pairwise incompatible items (each needs a
    bin of its own), items taken by decreasing size: the largest share, then each
    dimension's. 1 beyond `_CLIQUE_MAX_ITEMS` items (the items x items table)."""
    if packing.num_items > _CLIQUE_MAX_ITEMS:
        return 1
    clash = incompatible(packing)
    share = packing.sizes / np.maximum(packing.capacity, 1)
    keys = [share.max(axis=1), share.sum(axis=1), *(share[:, k] for k in range(share.shape[1]))]
    best = 1
    for key in keys:
        clique: list[int] = []
        for i in np.argsort(-key, kind="stable"):
            if clash[i, clique].all():
                clique.append(int(i))
        best = max(best, len(clique))
    return best


# --- the ejection search ----------------------------------------------------------------


@attrs.define
class SearchLog:
    """What `eject` did: steps run, bins before and after, and the step at which each
    bin fewer was found."""

    rounds: int = 0
    bins_before: int = 0
    bins_after: int = 0
    found_at: list[int] = attrs.field(factory=list)


def used_bins(bin_of: Sequence[int]) -> int:
    return len(set(bin_of))


def _renumbered(bin_of: Sequence[int]) -> list[int]:
    """Bins numbered 0.. in order of first use (used bins first, as the hosts' order)."""
    number: dict[int, int] = {}
    return [number.setdefault(b, len(number)) for b in bin_of]


def _weights(packing: Packing) -> list[int]:
    """Each item's weight in the pool search (the module docstring)."""
    share = packing.sizes * _SIZE_SCALE // np.maximum(packing.capacity, 1)
    return [int(v) ** 2 for v in share.sum(axis=1)]


def eject(
    packing: Packing, bin_of: Sequence[int], budget: Budget, lower: int, seed: int = 0
) -> tuple[list[int], SearchLog]:
    """A pool search for one bin fewer, again while it finds: the items of the lightest
    bin go to a pool; each step takes a pool item and puts it in the bin where it ejects
    the lightest set of at most `_MAX_EJECTED` items (none when it fits; items placed in
    the last `_TABU_STEPS` steps stay), the ejected items joining the pool. An empty pool
    is a packing with one bin fewer. One phase per weight growth of `_EJECTION_BUMPS`,
    each from the best packing so far and ended by `_STALL_STEPS` steps without a bin
    fewer; the search stops at `lower` bins or when `budget` is spent."""
    rng = random.Random(seed)
    weight = np.array(_weights(packing), dtype=np.int64)
    best = _renumbered(bin_of)
    log = SearchLog(bins_before=used_bins(best))
    for bump in _EJECTION_BUMPS:
        best = _phase(packing, best, weight, bump, budget, lower, rng, log)
    log.bins_after = used_bins(best)
    return best, log


def _phase(
    packing: Packing,
    bin_of: list[int],
    weight: npt.NDArray[np.int64],
    bump: float,
    budget: Budget,
    lower: int,
    rng: random.Random,
    log: SearchLog,
) -> list[int]:
    """The search from `bin_of` with weights growing by `bump` of the mean per ejection,
    until `lower` bins, the end of `budget` or a stall; the best packing (logged in `log`)."""
    best = bin_of
    state = _EjectionState(packing, best, weight, bump)
    last_found = log.rounds
    while used_bins(best) > lower and not budget.expired:
        if not budget.deterministic and budget.remaining() < 0.01:
            break
        if log.rounds - last_found > _STALL_STEPS:
            break
        if not state.pool:
            log.found_at.append(log.rounds)
            last_found = log.rounds
            best = _renumbered(state.bin_of)
            state = _EjectionState(packing, best, weight, bump)
            continue
        state.step(rng)
        log.rounds += 1
        if budget.deterministic:
            budget.charge(_STEP_S_FIXED + _STEP_S_PER_BIN * len(state.bins))
    return best


@functools.lru_cache(maxsize=16)
def _subsets(members: int) -> npt.NDArray[np.int64]:
    """Every non-empty set of up to `_MAX_EJECTED` of `members` positions (fewer when the
    table would pass `_MAX_SUBSET_ENTRIES`), as rows of 0/1 (sets x members)."""
    largest = 1
    for size in range(2, min(_MAX_EJECTED, members) + 1):
        rows = sum(math.comb(members, count) for count in range(1, size + 1))
        if rows * members <= _MAX_SUBSET_ENTRIES:
            largest = size
    if largest == 1:
        return np.eye(members, dtype=np.int64)
    table = [
        [int(k in subset) for k in range(members)]
        for count in range(1, largest + 1)
        for subset in itertools.combinations(range(members), count)
    ]
    return np.array(table, dtype=np.int64).reshape(len(table), members)


class _EjectionState:
    """Bins of one fewer than `bin_of` uses (its lightest dropped), their loads, and the
    pool."""

    def __init__(
        self,
        packing: Packing,
        bin_of: list[int],
        weight: npt.NDArray[np.int64],
        bump: float,
    ) -> None:
        self.packing = packing
        self.weight = weight.copy()
        self.bump = int(weight.mean() * bump)
        used = sorted(set(bin_of))
        load = {b: int(weight[[i for i, a in enumerate(bin_of) if a == b]].sum()) for b in used}
        dropped = min(used, key=lambda b: (load[b], b))
        self.bins = [b for b in used if b != dropped]
        self.bin_of: list[int] = list(bin_of)
        self.pool = [i for i, b in enumerate(bin_of) if b == dropped]
        self.members = [[i for i, a in enumerate(bin_of) if a == b] for b in self.bins]
        self.load = np.array(
            [packing.sizes[m].sum(axis=0) for m in self.members], dtype=np.int64
        ).reshape(len(self.bins), packing.sizes.shape[1])
        self.placed_at = np.full(packing.num_items, -_TABU_STEPS - 1, dtype=np.int64)
        self.steps = 0

    def step(self, rng: random.Random) -> None:
        """Place one pool item (the heaviest, now and then another) where it ejects least."""
        self.steps += 1
        pool = self.pool
        pick = max(range(len(pool)), key=lambda k: int(self.weight[pool[k]]))
        if rng.random() < _RANDOM_PICK:
            pick = rng.randrange(len(pool))
        item = pool.pop(pick)
        size = self.packing.sizes[item]
        excess = self.load + size - self.packing.capacity
        direct = np.flatnonzero((excess <= 0).all(axis=1))
        if direct.size:
            self._move(item, int(direct[0]), ())
            return
        choice: tuple[float, int, tuple[int, ...]] | None = None
        for position in range(len(self.bins)):
            ejected = self._lightest_ejection(position, excess[position])
            if ejected is None:
                continue
            cost = float(self.weight[list(ejected)].sum()) + rng.random()
            if choice is None or cost < choice[0]:
                choice = (cost, position, ejected)
        if choice is None:
            pool.append(item)
            return
        self._move(item, choice[1], choice[2])

    def _move(self, item: int, position: int, ejected: tuple[int, ...]) -> None:
        """Put `item` in the bin at `position`, its `ejected` items to the pool."""
        members = self.members[position]
        for i in ejected:
            members.remove(i)
            self.load[position] -= self.packing.sizes[i]
            self.pool.append(i)
            self.weight[i] += self.bump
        members.append(item)
        self.load[position] += self.packing.sizes[item]
        self.bin_of[item] = self.bins[position]
        self.placed_at[item] = self.steps

    def _lightest_ejection(self, position: int, excess: IntArray) -> tuple[int, ...] | None:
        """The lightest set of at most `_MAX_EJECTED` items of the bin at `position`, none
        placed in the last `_TABU_STEPS` steps, whose sizes cover `excess` in every
        dimension; None when there is none."""
        members = self.members[position]
        if not members:
            return None
        if len(members) ** 2 > _MAX_SUBSET_ENTRIES:
            return self._lightest_single(members, excess)
        subsets = _subsets(len(members))
        tabu = (self.steps - self.placed_at[members]) <= _TABU_STEPS
        covers = (subsets @ self.packing.sizes[members] >= excess).all(axis=1)
        allowed = covers & ((subsets @ tabu.astype(np.int64)) == 0)
        if not allowed.any():
            return None
        weights = np.where(allowed, subsets @ self.weight[members], np.iinfo(np.int64).max)
        best = subsets[int(np.argmin(weights))]
        return tuple(members[k] for k in np.flatnonzero(best))

    def _lightest_single(self, members: list[int], excess: IntArray) -> tuple[int, ...] | None:
        """`_lightest_ejection` by single items only (a bin of very many items)."""
        free = (self.steps - self.placed_at[members]) > _TABU_STEPS
        allowed = free & (self.packing.sizes[members] >= excess).all(axis=1)
        if not allowed.any():
            return None
        weights = np.where(allowed, self.weight[members], np.iinfo(np.int64).max)
        return (members[int(np.argmin(weights))],)
