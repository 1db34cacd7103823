"""Converters from public benchmark formats (PSPLIB `.sm`, VPSolver `.vbp`) and the runner.

The counts asserted for the real files were read off the file text by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import alibaba, psplib, vbp
from bench.run import parse_solvers, read_rows, run_suite
from bench.suites import suite
from placement.check import check
from placement.codec import dump_problem, load_problem
from placement.model import Objective
from placement.solvers import SolveOptions, solve

DATA = Path(__file__).parent.parent / "bench" / "data"
J301_1 = DATA / "psplib" / "j30" / "j301_1.sm"
CLASS1_20_3_0 = DATA / "vector_packing" / "panigrahy" / "class1" / "class1_20_3_0.vbp"

# Three real jobs between the dummies: job 2 (3 s, 2 of R1) precedes job 3 (2 s, 1 of R1
# and 1 of R2); job 4 (4 s, 2 of R1) is free. R1 holds 3, so jobs 2 and 4 never overlap
# while jobs 3 and 4 may: job 2 first, then 3 and 4 together, ends at 3 + 4 = 7; job 4
# first ends at 4 + 3 + 2 = 9. The optimum is 7.
TINY_SM = """\
************************************************************************
jobs (incl. supersource/sink ):  5
horizon                       :  9
RESOURCES
  - renewable                 :  2   R
  - nonrenewable              :  0   N
  - doubly constrained        :  0   D
************************************************************************
PRECEDENCE RELATIONS:
jobnr.    #modes  #successors   successors
   1        1          2           2   4
   2        1          1           3
   3        1          1           5
   4        1          1           5
   5        1          0
************************************************************************
REQUESTS/DURATIONS:
jobnr. mode duration  R 1  R 2
------------------------------------------------------------------------
  1      1     0       0    0
  2      1     3       2    0
  3      1     2       1    1
  4      1     4       2    0
  5      1     0       0    0
************************************************************************
RESOURCEAVAILABILITIES:
  R 1  R 2
    3    1
************************************************************************
"""


@pytest.fixture(scope="module")
def j301_1() -> psplib.RcpspInstance:
    """The first j30 instance: 30 jobs, 4 resources, optimum 43."""
    return psplib.read_sm(J301_1)


@pytest.fixture(scope="module")
def class1_20_3_0() -> vbp.VbpInstance:
    """A Panigrahy class-1 instance: 20 items in 3 dimensions, bins of 1000, optimum 6."""
    return vbp.read_vbp(CLASS1_20_3_0)


# --- PSPLIB ----------------------------------------------------------------------------


def test_sm_parse_matches_the_file_text(j301_1: psplib.RcpspInstance) -> None:
    assert j301_1.name == "j301_1"
    assert j301_1.num_jobs == 32
    assert j301_1.horizon == 158
    assert j301_1.capacities == (12, 13, 4, 12)
    assert len(j301_1.precedences()) == 48  # the sum of the '#successors' column
    assert j301_1.successors[0] == (2, 3, 4)
    assert j301_1.successors[31] == ()
    assert j301_1.durations[1] == 8
    assert j301_1.requests[1] == (4, 0, 0, 0)
    assert j301_1.durations[25] == 7
    assert j301_1.requests[25] == (0, 0, 4, 0)
    assert sum(j301_1.durations) == j301_1.horizon  # PSPLIB's horizon is the sum


def test_sm_problem_maps_jobs_pools_and_precedences(j301_1: psplib.RcpspInstance) -> None:
    problem = psplib.to_problem(j301_1)
    assert len(problem.guests) == 30  # jobs 2..31
    assert len(problem.hosts) == 1
    assert dict(problem.boot_pools) == {"R1": 12, "R2": 13, "R3": 4, "R4": 12}
    assert problem.objective == (Objective.PLACED, Objective.MAKESPAN)
    # 48 arcs minus 3 out of the source and 3 into the sink (jobs 29, 30, 31).
    assert sum(len(guest.boot.after) for guest in problem.guests) == 42
    job30 = problem.guest("job030")
    assert set(job30.boot.after) == {"job006", "job024", "job025"}
    assert job30.boot.duration_s == 2
    assert dict(job30.boot.load) == {"R2": 7}
    assert all(guest.hosts == {psplib.HOST_NAME} for guest in problem.guests)


def test_sm_problem_validates_and_round_trips(j301_1: psplib.RcpspInstance) -> None:
    problem = psplib.to_problem(j301_1)
    assert load_problem(json.loads(json.dumps(dump_problem(problem)))) == problem


def test_tiny_sm_solves_to_its_hand_computed_makespan() -> None:
    instance = psplib.parse_sm(TINY_SM, "tiny")
    problem = psplib.to_problem(instance)
    assert [guest.name for guest in problem.guests] == ["job002", "job003", "job004"]
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=2))
    report = check(problem, plan)
    assert report.ok
    assert report.metrics["objectives"]["makespan"] == 7


def test_real_j30_instance_solves_to_its_published_optimum() -> None:
    instance = psplib.read_sm(DATA / "psplib" / "j30" / "j301_2.sm")
    reference = psplib.load_reference(DATA / "psplib" / "j30_reference.csv")["j301_2"]
    assert reference.optimal
    problem = psplib.to_problem(instance)
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=2))
    report = check(problem, plan)
    assert report.ok
    assert report.metrics["unplaced"] == 0
    assert report.metrics["objectives"]["makespan"] == reference.upper


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("horizon  ", "horizont "), "header field"),
        (lambda text: text.replace("   2        1          1           3", "   2  1 2  3"), "bad"),
        (lambda text: text.replace("  4      1     4       2    0\n", ""), "do not cover"),
        (lambda text: text.replace("    3    1\n", "    3\n"), "capacities"),
        (
            lambda text: text.replace("   3        1          1           5", "   3 1 1 9"),
            "outside",
        ),
    ],
)
def test_malformed_sm_is_rejected(edit: object, message: str) -> None:
    assert callable(edit)
    with pytest.raises(psplib.FormatError, match=message):
        psplib.parse_sm(edit(TINY_SM), "tiny")


def test_reference_tables_cover_every_committed_instance() -> None:
    for set_name in ("j30", "j60"):
        reference = psplib.load_reference(DATA / "psplib" / f"{set_name}_reference.csv")
        names = {path.stem for path in (DATA / "psplib" / set_name).glob("*.sm")}
        assert len(names) == 480
        assert names <= set(reference)
        assert all(ref.lower <= ref.upper for ref in reference.values())


# --- vector bin packing ------------------------------------------------------------------


def test_vbp_parse_matches_the_file_text(class1_20_3_0: vbp.VbpInstance) -> None:
    assert class1_20_3_0.dimensions == 3
    assert class1_20_3_0.capacities == (1000, 1000, 1000)
    assert class1_20_3_0.num_items == 20
    assert class1_20_3_0.items[0] == ((267, 375, 305), 1)
    assert class1_20_3_0.items[-1] == ((256, 147, 186), 1)


def test_vbp_problem_maps_items_and_bins(class1_20_3_0: vbp.VbpInstance) -> None:
    reference = vbp.load_reference(DATA / "vector_packing" / "Panigrahy_summary_known.tsv")
    known = reference["class1_20_3_0"]
    assert (known.lower, known.optimum, known.heuristic) == (6, 6, 6)
    hosts = vbp.num_hosts(class1_20_3_0, known.heuristic)
    assert hosts >= known.heuristic
    assert hosts >= vbp.first_fit_decreasing(class1_20_3_0)
    problem = vbp.to_problem(class1_20_3_0, hosts)
    assert len(problem.hosts) == hosts
    assert len(problem.guests) == 20
    assert problem.resources == ("r0", "r1", "r2")
    assert all(
        dict(host.capacity) == {"r0": 1000, "r1": 1000, "r2": 1000} for host in problem.hosts
    )
    assert dict(problem.guests[0].demand) == {"r0": 267, "r1": 375, "r2": 305}
    assert problem.objective == (Objective.PLACED, Objective.CONSOLIDATE)
    assert load_problem(json.loads(json.dumps(dump_problem(problem)))) == problem


def test_vbp_demand_copies_become_guests() -> None:
    instance = vbp.parse_vbp("2\n10 10\n2\n6 4 2\n3 3 1\n", "copies")
    assert instance.num_items == 3
    problem = vbp.to_problem(instance)
    assert [dict(guest.demand) for guest in problem.guests] == [
        {"r0": 6, "r1": 4},
        {"r0": 6, "r1": 4},
        {"r0": 3, "r1": 3},
    ]
    # Two items of width 6 never share a bin of 10: first fit needs two bins.
    assert len(problem.hosts) == vbp.first_fit_decreasing(instance) == 2


def test_vbp_hosts_never_fewer_than_first_fit_needs() -> None:
    instance = vbp.parse_vbp("1\n10\n1\n6 4\n", "four")
    assert vbp.num_hosts(instance, upper_bound=2) == 4


def test_real_vbp_instance_solves_to_its_optimum(class1_20_3_0: vbp.VbpInstance) -> None:
    problem = vbp.to_problem(class1_20_3_0, vbp.num_hosts(class1_20_3_0, 6))
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=2))
    report = check(problem, plan)
    assert report.ok
    assert report.metrics["unplaced"] == 0
    assert report.metrics["objectives"]["consolidate"] == 6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("2\n10 10\n1\n3 3\n", "numbers for 1 item types"),
        ("1\n10\n1\n11 1\n", "does not fit"),
        ("1\n10\n1\n-1 1\n", "negative"),
        ("1\n10\n1\nx 1\n", "integers"),
    ],
)
def test_malformed_vbp_is_rejected(text: str, message: str) -> None:
    with pytest.raises(vbp.FormatError, match=message):
        vbp.parse_vbp(text, "bad")


def test_vbp_reference_tables_cover_every_committed_instance() -> None:
    folder = DATA / "vector_packing"
    reference = dict(vbp.load_reference(folder / "Panigrahy_summary_known.tsv"))
    reference.update(vbp.load_reference(folder / "Triplet_summary_known.tsv"))
    names = {path.stem for path in folder.rglob("*.vbp")}
    assert names <= set(reference)
    for name in names:
        known = reference[name]
        assert known.lower <= known.best_known <= known.heuristic


# --- the suites and the runner ------------------------------------------------------------


def test_public_instances_solve_to_their_published_optimum(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    instances = suite("tiny", match=["j301_1", "class1_20_3_0"])
    rows = list(
        run_suite(
            suite_name="tiny",
            instances=instances,
            solvers=parse_solvers("cpsat"),
            time_limit_s=5,
            out=out,
        )
    )
    by_name = {row["instance"]: row for row in rows}
    assert set(by_name) == {"j301_1", "class1_20_3_0"}
    for row in rows:
        assert row["violations"] == 0
        assert row["ref_gap"] == 0
        assert row["value"] == row["reference"]["upper"]
    assert by_name["j301_1"]["stage"] == "makespan"
    assert by_name["class1_20_3_0"]["stage"] == "consolidate"
    assert by_name["class1_20_3_0"]["reference"]["heuristic"] == 6
    assert len(read_rows(out)) == 2


def test_vbp_instances_offer_the_published_heuristic_host_count() -> None:
    [instance] = suite("vbp", match=["class1_20_3_0"])
    problem = instance.build()
    assert instance.reference is not None
    assert len(problem.hosts) == max(instance.reference.heuristic or 0, 1)
    assert len(problem.guests) == 20


# --- Alibaba GPU trace ---------------------------------------------------------------------

NODES = """sn,cpu_milli,memory_mib,gpu,model
n0,32000,262144,0,
n1,96000,393216,8,G2
n2,96000,393216,8,G2
n3,96000,393216,8,G2
"""
PODS = (
    (
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
    )
    + """p0,12000,16384,1,1000,,LS,Running,0,100,0
p1,6000,12288,1,460,,LS,Running,10,50,12
p2,4000,8192,0,0,,BE,Pending,20,200,
p3,8000,8192,2,1000,,LS,Running,30,300,40
"""
)


def _trace(folder: Path, nodes: str = NODES, pods: str = PODS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / alibaba.NODES_FILE).write_text(nodes, encoding="utf-8")
    (folder / alibaba.PODS_FILE).write_text(pods, encoding="utf-8")
    return folder


def test_alibaba_pods_alive_at_an_instant_become_guests(tmp_path: Path) -> None:
    folder = _trace(tmp_path)
    pods = alibaba.read_pods(folder / alibaba.PODS_FILE)
    # p1 is scheduled at 12, p2 never, p3 at 40; p1 is deleted at 50.
    assert [p.name for p in alibaba.alive_at(pods, 12)] == ["p0", "p1"]
    assert [p.name for p in alibaba.alive_at(pods, 45)] == ["p0", "p1", "p3"]
    assert [p.name for p in alibaba.alive_at(pods, 50)] == ["p0", "p3"]
    assert alibaba.alive_at(pods, 100) == [pods[3]]
    problem = alibaba.instant_problem(45, folder)
    assert [g.name for g in problem.guests] == ["p0", "p1", "p3"]
    assert dict(problem.guest("p1").demand) == {
        "cpu_milli": 6000,
        "memory_mib": 12288,
        "gpu_milli": 460,
    }
    assert dict(problem.guest("p3").demand)["gpu_milli"] == 2000
    assert dict(problem.host("n1").capacity) == {
        "cpu_milli": 96000,
        "memory_mib": 393216,
        "gpu_milli": 8000,
    }
    # Three G2 nodes are interchangeable and three pods use at most three: all kept;
    # with one pod, one G2 node is enough.
    assert [h.name for h in problem.hosts] == ["n0", "n1", "n2", "n3"]
    assert [h.name for h in alibaba.instant_problem(12, folder).hosts] == ["n0", "n1", "n2"]
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=2))
    assert check(problem, plan).ok
    # Everything fits on one G2 node; the CPU-only node cannot take a GPU pod.
    assert plan.stage("consolidate").value == 1  # type: ignore[union-attr]
    assert {a.host for a in plan.assignments} <= {"n1", "n2", "n3"}


def test_alibaba_reduction_keeps_at_most_n_nodes_per_kind() -> None:
    nodes = alibaba.read_nodes(Path(alibaba.DATA) / alibaba.NODES_FILE)
    assert len(nodes) == 1523
    reduced = alibaba.reduce_nodes(nodes, 5)
    kinds = {node.kind for node in nodes}
    assert len(reduced) == sum(min(5, sum(n.kind == k for n in nodes)) for k in kinds)
    assert [n.name for n in reduced] == sorted(n.name for n in reduced)  # file order kept


@pytest.mark.parametrize(
    ("nodes", "pods", "message"),
    [
        ("sn,cpu_milli,memory_mib,gpu\nn0,1,1,0\n", PODS, "missing column(s) model"),
        (NODES.replace("32000", "lots"), PODS, "csv:2: cpu_milli: expected a number"),
        (NODES, PODS.replace("6000,", "-6000,"), "csv:3: cpu_milli: must be >= 0, got -6000"),
        (NODES, PODS.replace("1,460", "1,1460"), "gpu_milli: at most 1000, got 1460"),
    ],
)  # fmt: skip
def test_malformed_trace_files_are_refused_with_the_place(
    tmp_path: Path, nodes: str, pods: str, message: str
) -> None:
    folder = _trace(tmp_path, nodes, pods)
    with pytest.raises(alibaba.FormatError) as error:
        alibaba.instant_problem(45, folder)
    assert message in str(error.value)


def test_alibaba_committed_subset_holds_the_pods_of_every_instant(tmp_path: Path) -> None:
    pods = alibaba.read_pods(Path(alibaba.DATA) / alibaba.PODS_FILE)
    for instant in alibaba.INSTANTS:
        assert 40 <= len(alibaba.alive_at(pods, instant)) <= 60
    # Extracting from the subset itself keeps it as it is.
    assert alibaba.extract(alibaba.DATA, tmp_path) == len(pods)
    assert (tmp_path / alibaba.PODS_FILE).read_bytes() == (
        Path(alibaba.DATA) / alibaba.PODS_FILE
    ).read_bytes()
    assert alibaba.main(["extract", str(tmp_path / "missing")]) == 2
