"""The benchmark suites: named lists of instances, each a problem builder with the stage
the report summarises and, where one is published, its reference value.

    suite("quick") -> list[Instance]; SUITES lists the names.

Families (an instance's `family`, the report's sections):

- `S`, `M`, `L`: the seeded failover scenarios of `bench.scenarios` (summarised stage
  `recovery`; no published reference: the bound is the solvers' proven one).
- `ha`: failover, evacuation and rebalance scenarios built with `placement.operations`
  (`bench.ha`), with the HA figures (guests recovered, time to all ready, peak SAN,
  migrations, final imbalance).
- `j30`, `j60`: PSPLIB RCPSP (`makespan`, reference: the best published bounds).
- `vbp`: Panigrahy and triplet vector bin packing (`consolidate`, reference: the proven
  optimum, or the best lower bound and the best published heuristic value).
- `alibaba`: the Alibaba GPU trace, the pods alive at an instant (`consolidate`, no
  published reference).

Suites: `quick` (a slice of every family, sized to run with every solver in under ten
minutes on two cores), `tiny` (one instance per family, for tests and notebooks), and one
suite per family with all of its instances.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import alibaba, psplib, vbp
from bench.instance import Instance, Reference
from placement.model import Problem

DATA = Path(__file__).resolve().parent / "data"


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# --- families ----------------------------------------------------------------------------


def scenario_instances(size: str, seeds: Iterable[int]) -> list[Instance]:
    """Failover scenarios `{size}-{seed}` from `bench.scenarios.generate`."""
    from bench.scenarios import generate

    def builder(seed: int) -> Callable[[], Problem]:
        return lambda: generate(size, seed)

    return [Instance(f"{size}-{seed}", size, "recovery", builder(seed)) for seed in seeds]


def pack_instances(sizes: Sequence[str] = ("M", "L")) -> list[Instance]:
    """Placement-only packs at scale: seed 0's cluster of each size cold-started
    (`placement.operations.coldstart`: every guest to place, online hosts empty) with the
    objective `placed` then `balance` (`pack-{size}-balance`) or `consolidate`."""
    from bench.scenarios import generate
    from placement.operations import coldstart

    def builder(size: str, stage: str) -> Callable[[], Problem]:
        return lambda: coldstart(generate(size, 0), objective=("placed", stage))

    return [
        Instance(f"pack-{size}-{stage}", "pack", stage, builder(size, stage))
        for size in sizes
        for stage in ("balance", "consolidate")
    ]


def psplib_instances(set_name: str) -> list[Instance]:
    """Every committed PSPLIB instance of `j30` or `j60`, in natural name order."""
    folder = DATA / "psplib"
    reference = psplib.load_reference(folder / f"{set_name}_reference.csv")
    instances = []
    for path in sorted((folder / set_name).glob("*.sm"), key=lambda p: _natural_key(p.stem)):
        known = reference[path.stem]

        def build(path: Path = path) -> Problem:
            return psplib.to_problem(psplib.read_sm(path))

        instances.append(
            Instance(
                path.stem,
                set_name,
                "makespan",
                build,
                Reference(known.lower, known.upper, "PSPLIB best published bounds"),
            )
        )
    return instances


def vbp_instances() -> list[Instance]:
    """Every committed vector packing instance: Panigrahy classes, then triplets."""
    folder = DATA / "vector_packing"
    instances = []
    for family, table in (("panigrahy", "Panigrahy"), ("triplet", "Triplet")):
        reference = vbp.load_reference(folder / f"{table}_summary_known.tsv")
        paths = sorted((folder / family).rglob("*.vbp"), key=lambda p: _natural_key(p.stem))
        for path in paths:
            known = reference[path.stem]

            def build(path: Path = path, heuristic: int = known.heuristic) -> Problem:
                instance = vbp.read_vbp(path)
                return vbp.to_problem(instance, vbp.num_hosts(instance, heuristic))

            instances.append(
                Instance(
                    path.stem,
                    "vbp",
                    "consolidate",
                    build,
                    Reference(
                        known.best_lower,
                        known.best_known,
                        "proven optimum" if known.optimum is not None else "LB..best heuristic",
                        heuristic=known.heuristic,
                    ),
                )
            )
    return instances


def alibaba_instances(instants: Sequence[int] = alibaba.INSTANTS) -> list[Instance]:
    """The pods alive at each instant of the committed Alibaba subset."""

    def builder(instant: int) -> Callable[[], Problem]:
        return lambda: alibaba.instant_problem(instant)

    return [
        Instance(f"alibaba-{instant}", "alibaba", "consolidate", builder(instant))
        for instant in instants
    ]


def ha_instances(names: Sequence[str] | None = None) -> list[Instance]:
    """The HA scenarios of `bench.ha`, all or those named."""
    from bench import ha

    return ha.instances(names)


def _pick(instances: Sequence[Instance], names: Iterable[str]) -> list[Instance]:
    by_name = {instance.name: instance for instance in instances}
    return [by_name[name] for name in names if name in by_name]


# --- the suites --------------------------------------------------------------------------

# The quick suite's public instances: j30 across its parameter groups (easy to hard),
# vector packing across classes and dimensions, all small enough for a 10 s limit.
QUICK_J30 = ("j301_1", "j3013_1", "j3025_1", "j3037_1", "j3046_1")
QUICK_VBP = (
    "class1_20_3_0",
    "class4_40_5_0",
    "class6_40_3_0",
    "class9_20_10_0",
    "classF_60_3_0",
)
QUICK_HA = ("failover-1-of-3", "failover-1-of-16", "evacuate-40")
TINY_HA = ("failover-1-of-3",)


def _quick() -> list[Instance]:
    return (
        scenario_instances("S", range(3))
        + ha_instances(QUICK_HA)
        + _pick(psplib_instances("j30"), QUICK_J30)
        + _pick(vbp_instances(), QUICK_VBP)
        + alibaba_instances(alibaba.INSTANTS[:2])
    )


def _tiny() -> list[Instance]:
    return (
        scenario_instances("S", [0])
        + ha_instances(TINY_HA)
        + _pick(psplib_instances("j30"), ["j301_1"])
        + _pick(vbp_instances(), ["class1_20_3_0"])
        + alibaba_instances(alibaba.INSTANTS[:1])
    )


SUITES: dict[str, tuple[str, Callable[[], list[Instance]]]] = {
    "quick": ("S-0..2, small HA scenarios, 5 j30, 5 vector packing, 2 Alibaba instants", _quick),
    "tiny": ("one instance per family (tests and notebooks)", _tiny),
    "s": ("failover scenarios S-0..S-9 (30 guests, 3 hosts)", lambda: _s()),
    "m": ("failover scenarios M-0..M-2 (1,000 guests, 100 hosts)", lambda: _m()),
    "l": ("failover scenario L-0 (10,000 guests, 1,000 hosts)", lambda: _l()),
    "ha": ("failover 1 of 3, 1 of 16, 10 of 100; evacuation; rebalance", lambda: _ha()),
    "j30": ("PSPLIB j30, all 480 instances", lambda: psplib_instances("j30")),
    "j60": ("PSPLIB j60, all 480 instances", lambda: psplib_instances("j60")),
    "vbp": ("vector packing, 450 Panigrahy + 150 triplet instances", vbp_instances),
    "alibaba": ("Alibaba GPU trace 2023, pods alive at 8 instants", alibaba_instances),
    "pack": (
        "placement-only packs of M and L (1,000 / 10,000 guests): balance, consolidate",
        lambda: pack_instances(),
    ),
}


def _s() -> list[Instance]:
    return scenario_instances("S", range(10))


def _m() -> list[Instance]:
    return scenario_instances("M", range(3))


def _l() -> list[Instance]:
    return scenario_instances("L", range(1))


def _ha() -> list[Instance]:
    return ha_instances()


class UnknownSuiteError(KeyError):
    """No suite has this name."""


def suite(name: str, *, match: Sequence[str] = (), limit: int | None = None) -> list[Instance]:
    """The instances of suite `name`; `match` keeps names matching any glob, `limit` the
    first N."""
    try:
        _, make = SUITES[name]
    except KeyError:
        known = ", ".join(SUITES)
        raise UnknownSuiteError(f"unknown suite '{name}' (known: {known})") from None
    instances = make()
    if match:
        instances = [i for i in instances if any(fnmatch.fnmatch(i.name, m) for m in match)]
    if limit is not None:
        instances = instances[:limit]
    return instances
