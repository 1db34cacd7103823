"""Proxmox's imbalance as an objective: minimised by a sequence of convex CP-SAT problems.

The imbalance of integer loads s_1..s_N is sqrt(V / S^2 / (N - 1)) with S = sum(s) and
V = N * sum(s^2) - S^2; minimising it is minimising r = V / S^2, a ratio with a concave
part (-S^2) that CP-SAT bounds badly: Dinkelbach's form `V - r* S^2` found no improvement
of a 4-host, 41-guest rebalance in 5 s, exact coefficients or rounded.

The convex-concave procedure does: at the incumbent (ratio r*, total S*), replace -S^2 by
its tangent, which lies above it. What is left is N * sum((s_h - t)^2) plus a constant,
with t = (1 + r*) * S* / N: the `spread` objective with its target at t instead of the
even load, separable over hosts, which CP-SAT solves and proves fast. Its optimum is
never above the incumbent in V - r* S^2, hence never a higher ratio; repeat from it
until the ratio stops falling. This finds a local optimum of the ratio, not a proven
global one. The bound comes from two more solves: the least sum of squares Q and the
largest total S any plan can have give r >= N * Q_min / S_max^2 - 1 (exact when every
plan has the same total, as on hosts of one size; weak when totals vary a lot).

t is a fraction: it is kept as p / TARGET_DENOMINATOR, so the objective is
sum((TARGET_DENOMINATOR * s_h - p)^2), exact integers of modest size. Every candidate is
accepted on its exact ratio (`ratio`), so rounding t can cost a step but never a wrong one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from ortools.sat.python import cp_model

#: t is expressed in sixteenths of a load step.
TARGET_DENOMINATOR = 16


def ratio(steps: Sequence[int]) -> Fraction:
    """V / S^2 of integer loads, exactly (0 for no load or fewer than two): the squared
    coefficient of variation, which orders plans as the imbalance does."""
    count = len(steps)
    total = sum(steps)
    if count < 2 or total <= 0:
        return Fraction(0)
    return Fraction(count * sum(s * s for s in steps) - total * total, total * total)


def tangent_target(steps: Sequence[int]) -> int:
    """p, with t = p / TARGET_DENOMINATOR = (1 + r) * S / N at the loads `steps`."""
    count = max(len(steps), 1)
    total = sum(steps)
    target = (1 + ratio(steps)) * Fraction(total, count)
    return round(target * TARGET_DENOMINATOR)


def add_distance_to_target(
    model: cp_model.CpModel,
    steps: Sequence[tuple[cp_model.LinearExprT, int, int]],
    target: int,
) -> cp_model.LinearExpr:
    """sum((TARGET_DENOMINATOR * s_h - target)^2) over the hosts' load steps (each an
    expression with its bounds, or an int)."""
    q = TARGET_DENOMINATOR
    squares: list[cp_model.LinearExprT] = []
    constant = 0
    for expression, low, high in steps:
        low_d, high_d = q * low - target, q * high - target
        if low == high:
            constant += low_d * low_d
            continue
        distance = model.new_int_var(low_d, high_d, "")
        model.add(distance == q * expression - target)
        biggest = max(low_d * low_d, high_d * high_d)
        lowest = 0 if low_d <= 0 <= high_d else min(low_d * low_d, high_d * high_d)
        square = model.new_int_var(lowest, biggest, "")
        model.add_multiplication_equality(square, [distance, distance])
        squares.append(square)
    result: cp_model.LinearExpr = cp_model.LinearExpr.sum(squares) + constant
    return result


def ratio_lower_bound(count: int, squares_low: float, total_high: float) -> Fraction:
    """r = N * Q / S^2 - 1 >= N * Q_min / S_max^2 - 1 (and >= 0), from a lower bound on
    Q = sum(s^2) and an upper bound on S = sum(s) over every plan."""
    if count < 2 or total_high <= 0:
        return Fraction(0)
    bound = (
        Fraction(count) * Fraction(math.floor(squares_low)) / Fraction(math.ceil(total_high)) ** 2
        - 1
    )
    return max(bound, Fraction(0))


def imbalance_of_ratio(count: int, value: Fraction) -> float:
    """The imbalance whose squared variation is `value`: sqrt(r / (N - 1))."""
    return math.sqrt(float(value) / (count - 1)) if count >= 2 else 0.0
