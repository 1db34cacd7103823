"""The failure-survey benchmark: scenario throughput on local workers and on Dask, and
admission control against vSphere-style policies. See docs/survey.md.

    python -m bench survey throughput --sizes M,L --out results/survey.jsonl
    python -m bench survey admission --size M --out results/survey.jsonl

**throughput**: for each cluster (seed 0 of `bench.scenarios` before its failure: the hosts
that fail there are back online) and each kind of scenario (every single host, every
domain), the survey on 1 and 2 local worker processes and on a 2-worker Dask
`LocalCluster` (processes, one thread each), in deterministic mode so that the results can
be compared across executors. `--limit N` surveys the first N scenarios of a kind (the L
cluster's 1,000 single-host failures take about an hour on two cores).

**admission**: a queue of new guests drawn from the generator's size mix is offered one by
one to three policies, each placing an admitted guest on the host with the most free RAM:

- `vsphere-slots`: vSphere HA's slot policy for one host failure. A slot is the largest
  RAM and the largest vCPU demand of the running guests; a host holds
  min(usable RAM / slot RAM, usable vCPUs / slot vCPUs) slots; a guest is admitted while
  the running guests (one slot each) fit in the slots of all hosts but the largest.
- `vsphere-percentage`: the cluster-resource-percentage policy, reserving per resource the
  share of the largest host (what one failure can take); a guest is admitted while the
  summed demand stays within the rest.
- `survey-best-fit`: admitted when, on one of the three hosts with the most free RAM,
  best fit restarts every guest of every single-host failure around the running ones
  (`placement.survive.best_fit_unsafe`, a sufficient test: milliseconds per scenario).

Each policy's final cluster is then surveyed (cpsat, no live migration during recovery): does
what it admitted survive every single-host failure? For the one that does not, the N+1-safe
rebalance (`placement.survive`) says how many moves would make it safe.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from bench.ha import _online
from bench.run import append_row, environment
from bench.scenarios import GIB, _size, generate
from placement.executors import DaskExecutor, Executor, InlineExecutor, ProcessExecutor
from placement.model import Guest, GuestState, Problem
from placement.survey import SurveyOptions, failure_scenarios, survey, survey_to_dict

Row = dict[str, Any]


def cluster_state(size: str, seed: int = 0) -> Problem:
    """The running cluster of `bench.scenarios.generate(size, seed)` before its failure."""
    return _online(generate(size, seed))


def _comparable(result: Any) -> Any:
    document = survey_to_dict(result)
    for key in ("wall_s", "executor"):
        document.pop(key)
    for scenario in document["scenarios"]:
        scenario.pop("runtime_s")
    return document


def _executors(names: Sequence[str]) -> list[tuple[str, Callable[[], Executor], Any]]:
    """(name, factory, closer) per executor name: local-1, local-2, dask-2."""
    made: list[tuple[str, Callable[[], Executor], Any]] = []
    for name in names:
        if name == "local-1":
            made.append((name, InlineExecutor, None))
        elif name.startswith("local-"):
            jobs = int(name.split("-")[1])
            made.append((name, lambda jobs=jobs: ProcessExecutor(jobs), None))
        elif name.startswith("dask-"):
            import distributed

            workers = int(name.split("-")[1])
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = distributed.Client(cluster)
            made.append(
                (name, lambda client=client: DaskExecutor(client=client), (client, cluster))
            )
        else:
            raise ValueError(f"unknown executor '{name}' (local-N, dask-N)")
    return made


def throughput(
    sizes: Sequence[str],
    kinds: Sequence[str],
    executors: Sequence[str],
    time_limit_s: float,
    limit: int | None,
    out: Path,
    log: Callable[[str], None],
) -> list[Row]:
    """Survey each (size, kind) on each executor; one row per run, appended to `out`."""
    rows = []
    env = environment()
    made = _executors(executors)
    try:
        for size in sizes:
            state = cluster_state(size)
            for kind in kinds:
                scenarios = failure_scenarios(state, kind)[:limit]
                options = SurveyOptions(time_limit_s=time_limit_s, deterministic=True)
                reference: Any = None
                for name, factory, _ in made:
                    with factory() as executor:
                        result = survey(state, scenarios, options, executor=executor, kind=kind)
                    document = _comparable(result)
                    if reference is None:
                        reference = document
                    unplaced = [o.scenario.name for o in result.outcomes if o.unplaced]
                    row: Row = {
                        "bench": "survey-throughput",
                        "size": size,
                        "hosts": len(state.hosts),
                        "guests": len(state.guests),
                        "kind": kind,
                        "scenarios": len(scenarios),
                        "of_scenarios": len(failure_scenarios(state, kind)),
                        "executor": name,
                        "time_limit_s": time_limit_s,
                        "deterministic": True,
                        "wall_s": result.wall_s,
                        "scenarios_per_s": round(len(scenarios) / result.wall_s, 4),
                        "scenario_runtime_s": sorted(o.runtime_s for o in result.outcomes),
                        "safe": result.verdict.safe,
                        "unsafe": list(result.verdict.unsafe),
                        "with_unplaced": unplaced,
                        "invalid": list(result.verdict.invalid),
                        "pinned": sum(o.pinned for o in result.outcomes),
                        "identical_to_first": document == reference,
                        "env": env,
                    }
                    append_row(out, row)
                    rows.append(row)
                    log(
                        f"{size} {kind} x{len(scenarios)} on {name}: {result.wall_s:.1f} s, "
                        f"{'safe' if result.verdict.safe else 'UNSAFE'}, "
                        f"identical: {row['identical_to_first']}"
                    )
    finally:
        for _, _, closer in made:
            if closer is not None:
                client, cluster = closer
                client.close()
                cluster.close()
    return rows


# --- admission ---------------------------------------------------------------------------


def guest_queue(count: int, seed: int = 0) -> list[Guest]:
    """`count` new guests from the generator's size mix (priority 1, boot profile of a
    light Linux guest), named new0000, ..."""
    rng = random.Random(f"admission/{seed}")
    guests = []
    for index in range(count):
        ram_gib, vcpus = _size(rng)
        guests.append(
            Guest(
                f"new{index:04d}",
                {"ram_mib": ram_gib * GIB, "vcpus": vcpus},
                priority=1,
            )
        )
    return guests


def _loads(state: Problem) -> dict[str, dict[str, int]]:
    loads: dict[str, dict[str, int]] = {h.name: {} for h in state.hosts}
    for guest in state.guests:
        if guest.current_host is not None and state.holds_current_host(guest):
            for resource, amount in guest.demand.items():
                used = loads[guest.current_host]
                used[resource] = used.get(resource, 0) + amount
    return loads


def _most_free(state: Problem, guest: Guest) -> str | None:
    from placement.admission import candidate_hosts

    loads = _loads(state)
    hosts = candidate_hosts(state, guest)
    if not hosts:
        return None
    return max(
        hosts, key=lambda h: (state.host(h).usable("ram_mib") - loads[h].get("ram_mib", 0), h)
    )


def _running(guest: Guest, host: str) -> Guest:
    return attrs.evolve(guest, state=GuestState.RUNNING, current_host=host)


def _slots_ok(state: Problem) -> bool:
    running = [g for g in state.guests if state.holds_current_host(g)]
    slot_ram = max(g.demand.get("ram_mib", 0) for g in running)
    slot_cpu = max(1, max(g.demand.get("vcpus", 0) for g in running))
    per_host = [
        min(h.usable("ram_mib") // max(slot_ram, 1), h.usable("vcpus") // slot_cpu)
        for h in state.hosts
        if h.online
    ]
    return len(running) <= sum(per_host) - max(per_host)


def _percentage_ok(state: Problem) -> bool:
    online = [h for h in state.hosts if h.online]
    loads = _loads(state)
    for resource in ("ram_mib", "vcpus"):
        total = sum(h.usable(resource) for h in online)
        reserved = max(h.usable(resource) for h in online) / total
        used = sum(loads[h.name].get(resource, 0) for h in online)
        if used > math.floor((1 - reserved) * total):
            return False
    return True


def _best_fit_admit(state: Problem, guest: Guest, scenarios: Any) -> str | None:
    from placement.admission import candidate_hosts, with_guest
    from placement.survive import best_fit_unsafe

    # The hosts with the most free RAM first, as the vSphere policies place.
    loads = _loads(state)
    ranked = sorted(
        candidate_hosts(state, guest),
        key=lambda h: (loads[h].get("ram_mib", 0) - state.host(h).usable("ram_mib"), h),
    )
    for host in ranked[:3]:
        if not best_fit_unsafe(with_guest(state, guest, host), scenarios):
            return host
    return None


def admission(
    size: str,
    count: int,
    time_limit_s: float,
    jobs: int,
    out: Path,
    log: Callable[[str], None],
    plots: Path | None = None,
) -> list[Row]:
    """Offer `count` new guests to each policy; survey each final cluster (and draw its
    survey into `plots/survey-admission-{size}-{policy}.png` when `plots` is given)."""
    from placement.survive import SurviveOptions, survive

    state = cluster_state(size)
    scenarios = failure_scenarios(state, "hosts")
    queue = guest_queue(count)
    env = environment()
    rows = []
    policies: dict[str, Callable[[Problem, Guest], str | None]] = {
        "vsphere-slots": lambda s, g: _admit_if(s, g, _slots_ok),
        "vsphere-percentage": lambda s, g: _admit_if(s, g, _percentage_ok),
        "survey-best-fit": lambda s, g: _best_fit_admit(s, g, scenarios),
    }
    for name, policy in policies.items():
        started = time.perf_counter()
        current = state
        admitted = 0
        for guest in queue:
            host = policy(current, guest)
            if host is not None:
                current = attrs.evolve(current, guests=(*current.guests, _running(guest, host)))
                admitted += 1
        decide_s = time.perf_counter() - started
        options = SurveyOptions(time_limit_s=time_limit_s, moves_in_recovery=False)
        with ProcessExecutor(jobs) as executor:
            checked = survey(current, scenarios, options, executor=executor, kind="hosts")
        if plots is not None:
            from placement.survey_plot import write_survey_plot

            plots.mkdir(parents=True, exist_ok=True)
            write_survey_plot(checked, plots / f"survey-admission-{size}-{name}.png")
        row: Row = {
            "bench": "survey-admission",
            "size": size,
            "policy": name,
            "offered": count,
            "admitted": admitted,
            "admitted_ram_gib": sum(
                g.demand.get("ram_mib", 0) for g in current.guests[len(state.guests) :]
            )
            // GIB,
            "decide_s": round(decide_s, 2),
            "survey_wall_s": checked.wall_s,
            "safe": checked.verdict.safe,
            "unsafe": list(checked.verdict.unsafe),
            "at_risk": len(checked.verdict.at_risk),
            "time_limit_s": time_limit_s,
            "env": env,
        }
        if not checked.verdict.safe:
            fixed = survive(
                current,
                scenarios,
                SurviveOptions(
                    max_moves=50,
                    time_limit_s=60,
                    survey=SurveyOptions(time_limit_s=time_limit_s),
                ),
                executor=ProcessExecutor(jobs),
            )
            last = fixed.rounds[-1]
            row["rebalance"] = {
                "max_moves": 50,
                "safe": fixed.safe,
                "rounds": len(fixed.rounds),
                "stages": [
                    {"name": s.name, "value": s.value, "bound": s.bound, "gap": s.gap}
                    for s in last.stages
                ],
                "given_up": list(last.given_up),
                "moves": last.moves,
                "runtime_s": round(sum(r.runtime_s for r in fixed.rounds), 1),
            }
        append_row(out, row)
        rows.append(row)
        log(json.dumps({k: v for k, v in row.items() if k != "env"}))
    return rows


def _admit_if(state: Problem, guest: Guest, ok: Callable[[Problem], bool]) -> str | None:
    host = _most_free(state, guest)
    if host is None:
        return None
    trial = attrs.evolve(state, guests=(*state.guests, _running(guest, host)))
    return host if ok(trial) else None


def main_survey(args: Any) -> int:
    """`python -m bench survey throughput|admission`."""

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.what == "throughput":
        throughput(
            [s.strip() for s in args.sizes.split(",") if s.strip()],
            [k.strip() for k in args.kinds.split(",") if k.strip()],
            [e.strip() for e in args.executors.split(",") if e.strip()],
            args.time_limit,
            args.limit,
            out,
            log,
        )
    else:
        plots = Path(args.plots) if args.plots else None
        admission(args.size, args.count, args.time_limit, args.jobs, out, log, plots)
    return 0
