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
  summed share of the bin, so that a large item is worth ejecting several small ones.

On the vector-packing sample this packed better than CP-SAT on a compact model in the
same time (docs/optimiser.md has the numbers). Sizes are integers as in the problem; a
dimension is a resource, a bin a host (every host of a pure packing is the same,
`pure._plain_packing`).
"""

from __future__ import annotations

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
# Work charged per ejection step and bin in deterministic mode (about 2-4 ms a step on
# 30-55 bins of 120 items, measured on a shared 2-core machine), how many steps an item
# stays in a bin before it may be ejected again, and how many one step ejects at most.
_STEP_S_PER_BIN = 6e-5
_TABU_STEPS = 7
_MAX_EJECTED = 3
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
    capacity - k] too, and the items of at least k fill what those leave, and more bins."""
    values = sorted((int(s) for s in sizes), reverse=True)
    best = 0
    half = capacity / 2
    for k in sorted({0, *(v for v in values if v <= half)}):
        big = [v for v in values if v > capacity - k]
        middle = [v for v in values if half < v <= capacity - k]
        small = sum(v for v in values if k <= v <= half)
        room = len(middle) * capacity - sum(middle)
        extra = max(0, math.ceil((small - room) / capacity)) if capacity else 0
        best = max(best, len(big) + len(middle) + extra)
    return best


def incompatible(packing: Packing) -> npt.NDArray[np.bool_]:
    """items x items: whether the two exceed the capacity together in some dimension."""
    sizes = packing.sizes
    together = sizes[:, None, :] + sizes[None, :, :]
    clash = np.asarray((together > packing.capacity).any(axis=2), dtype=bool)
    np.fill_diagonal(clash, False)
    return clash


def _clique(packing: Packing) -> int:
    """The largest of a few greedy cliques of pairwise incompatible items (each needs a
    bin of its own), items taken by decreasing size: the largest share, then each
    dimension's."""
    clash = incompatible(packing)
    share = packing.sizes / np.maximum(packing.capacity, 1)
    keys = [share.max(axis=1), share.sum(axis=1), *(share[:, k] for k in range(share.shape[1]))]
    best = 1
    for key in keys:
        clique: list[int] = []
        for i in np.argsort(-key, kind="stable"):
            if all(clash[i, j] for j in clique):
                clique.append(int(i))
        best = max(best, len(clique))
    return best


# --- the ejection search ----------------------------------------------------------------


@attrs.define
class SearchLog:
    """What `eject` did: steps run, bins before and after."""

    rounds: int = 0
    bins_before: int = 0
    bins_after: int = 0


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
    is a packing with one bin fewer. Stops at `lower` bins or when `budget` is spent."""
    rng = random.Random(seed)
    weight = _weights(packing)
    best = _renumbered(bin_of)
    log = SearchLog(bins_before=used_bins(best))
    state = _EjectionState(packing, best, weight)
    while used_bins(best) > lower and not budget.expired:
        if not budget.deterministic and budget.remaining() < 0.01:
            break
        if not state.pool:
            best = _renumbered(state.bin_of)
            state = _EjectionState(packing, best, weight)
            continue
        state.step(rng)
        log.rounds += 1
        if budget.deterministic:
            budget.charge(_STEP_S_PER_BIN * len(state.bins))
    log.bins_after = used_bins(best)
    return best, log


class _EjectionState:
    """Bins of one fewer than `bin_of` uses (its lightest dropped) and the pool."""

    def __init__(self, packing: Packing, bin_of: list[int], weight: list[int]) -> None:
        self.packing = packing
        self.weight = weight
        load = {b: sum(weight[i] for i, a in enumerate(bin_of) if a == b) for b in set(bin_of)}
        dropped = min(load, key=lambda b: (load[b], b))
        self.bins = [b for b in sorted(load) if b != dropped]
        self.bin_of: list[int] = list(bin_of)
        self.pool = [i for i, b in enumerate(bin_of) if b == dropped]
        self.load = {
            b: packing.sizes[[i for i, a in enumerate(bin_of) if a == b]].sum(axis=0)
            for b in self.bins
        }
        self.members = {b: [i for i, a in enumerate(bin_of) if a == b] for b in self.bins}
        self.placed_at = [-_TABU_STEPS] * packing.num_items
        self.steps = 0

    def step(self, rng: random.Random) -> None:
        """Place one pool item (the heaviest, now and then another) where it ejects least."""
        self.steps += 1
        pool = self.pool
        pick = max(range(len(pool)), key=lambda k: self.weight[pool[k]])
        if rng.random() < _RANDOM_PICK:
            pick = rng.randrange(len(pool))
        item = pool.pop(pick)
        size = self.packing.sizes[item]
        choice: tuple[float, int, tuple[int, ...]] | None = None
        for b in self.bins:
            excess = self.load[b] + size - self.packing.capacity
            if (excess <= 0).all():
                choice = (-1.0, b, ())
                break
            ejected = self._lightest_ejection(b, excess)
            if ejected is None:
                continue
            cost = sum(self.weight[i] for i in ejected) + rng.random()
            if choice is None or cost < choice[0]:
                choice = (cost, b, ejected)
        if choice is None:
            pool.append(item)
            return
        _, b, ejected = choice
        for i in ejected:
            self.members[b].remove(i)
            self.load[b] = self.load[b] - self.packing.sizes[i]
            pool.append(i)
        self.members[b].append(item)
        self.load[b] = self.load[b] + size
        self.bin_of[item] = b
        self.placed_at[item] = self.steps

    def _lightest_ejection(self, b: int, excess: IntArray) -> tuple[int, ...] | None:
        """The lightest set of at most `_MAX_EJECTED` ejectable items of bin `b` whose
        sizes cover `excess` in every dimension, or None."""
        free = [i for i in self.members[b] if self.steps - self.placed_at[i] > _TABU_STEPS]
        need = excess > 0
        best: tuple[int, ...] | None = None
        best_weight = 0
        for count in range(1, min(_MAX_EJECTED, len(free)) + 1):
            for subset in itertools.combinations(free, count):
                total = self.packing.sizes[list(subset)].sum(axis=0)
                if (total[need] >= excess[need]).all():
                    w = sum(self.weight[i] for i in subset)
                    if best is None or w < best_weight:
                        best, best_weight = subset, w
        return best
