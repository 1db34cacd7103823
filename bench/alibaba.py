"""Alibaba `cluster-trace-gpu-v2023` as placement problems: the pods alive at an instant,
packed onto the trace's nodes.

The mapping: every node is a host with capacities `cpu_milli` (milli-cores),
`memory_mib` and `gpu_milli` (its GPUs x 1000); every pod alive at the chosen instant
(scheduled at or before it, deleted after it) is a stopped guest demanding its CPU
milli-cores, memory and `num_gpu x gpu_milli` GPU milli-units. Objective
`["placed", "consolidate"]`: place every pod, then on as few nodes as possible, which is
the trace's offline packing question ("how many nodes does this workload need?").

What the mapping loses, on purpose: GPUs are pooled per node (a pod asking 470 milli of
one GPU may use the leftovers of two GPUs), so the GPU count is a relaxation of the
per-device constraint; and the pod's real node is not in the trace, so there is no
current placement to compare with. The trace publishes no optimum: the reference is the
solvers' own proven bound.

Nodes of one type (same model, CPU, memory and GPUs) are interchangeable, and a plan
never uses more nodes than it has pods, so `to_problem` keeps at most as many nodes of
each type as there are pods (`reduce_nodes`): an exact reduction that turns 1,523 hosts
into a few hundred without changing the optimum.

    python -m bench.alibaba extract SRC_DIR --out bench/data/alibaba   # the committed subset
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from placement.model import Guest, Host, Problem

DATA = Path(__file__).resolve().parent / "data" / "alibaba"
NODES_FILE = "openb_node_list_all_node.csv"
PODS_FILE = "openb_pod_list_default.csv"
CPU = "cpu_milli"
MEMORY = "memory_mib"
GPU = "gpu_milli"

# The busiest instant (most pods alive) in each of 8 equal windows of the trace's busy
# period [10,000,000 s, 12,902,960 s): 46 to 56 pods each. Found by a sweep over the
# scheduling and deletion events of the full pod list; the committed pod subset holds
# exactly the pods alive at one of these.
INSTANTS: tuple[int, ...] = (
    10_348_168,
    10_436_521,
    10_776_568,
    11_221_629,
    11_474_526,
    11_821_651,
    12_252_029,
    12_612_349,
)

_NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
_POD_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)


class FormatError(ValueError):
    """A trace file is not as the trace's README describes it."""


@attrs.frozen
class Node:
    """A node of the trace: CPU in milli-cores, memory in MiB, whole GPUs, GPU model
    (empty for CPU-only nodes)."""

    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str

    @property
    def kind(self) -> tuple[str, int, int, int]:
        """What makes two nodes interchangeable."""
        return (self.model, self.cpu_milli, self.memory_mib, self.gpus)


@attrs.frozen
class Pod:
    """A pod of the trace. `gpu_milli` is the share of each GPU it asks for (1000 = a
    whole GPU); times in seconds from the trace's start; `scheduled_s` None = never
    scheduled (still pending when the trace ended)."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    qos: str
    phase: str
    created_s: int
    deleted_s: int
    scheduled_s: int | None

    @property
    def gpu_demand(self) -> int:
        """GPU milli-units in all: `num_gpu x gpu_milli`."""
        return self.num_gpu * self.gpu_milli

    def alive_at(self, instant_s: int) -> bool:
        """Scheduled at or before `instant_s` and not yet deleted."""
        return self.scheduled_s is not None and self.scheduled_s <= instant_s < self.deleted_s


def _rows(path: Path, columns: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise FormatError(f"{path.name}: missing column(s) {', '.join(missing)}")
        yield from enumerate(reader, start=2)


def _int(path: Path, line: int, row: dict[str, str], column: str, *, optional: bool = False) -> int:
    text = (row.get(column) or "").strip()
    if optional and text == "":
        return -1
    try:
        value = int(float(text))
    except ValueError:
        message = f"{path.name}:{line}: {column}: expected a number, got {text!r}"
        raise FormatError(message) from None
    if value < 0:
        raise FormatError(f"{path.name}:{line}: {column}: must be >= 0, got {value}")
    return value


def read_nodes(path: str | Path) -> list[Node]:
    """The node list (`openb_node_list_all_node.csv`), in file order."""
    path = Path(path)
    nodes = []
    for line, row in _rows(path, _NODE_COLUMNS):
        nodes.append(
            Node(
                name=row["sn"].strip(),
                cpu_milli=_int(path, line, row, "cpu_milli"),
                memory_mib=_int(path, line, row, "memory_mib"),
                gpus=_int(path, line, row, "gpu"),
                model=(row.get("model") or "").strip(),
            )
        )
    if not nodes:
        raise FormatError(f"{path.name}: no nodes")
    return nodes


def read_pods(path: str | Path) -> list[Pod]:
    """The pod list (`openb_pod_list_default.csv` or the committed subset), in file order."""
    path = Path(path)
    pods = []
    for line, row in _rows(path, _POD_COLUMNS):
        scheduled = _int(path, line, row, "scheduled_time", optional=True)
        gpu_milli = _int(path, line, row, "gpu_milli")
        if gpu_milli > 1000:
            raise FormatError(f"{path.name}:{line}: gpu_milli: at most 1000, got {gpu_milli}")
        pods.append(
            Pod(
                name=row["name"].strip(),
                cpu_milli=_int(path, line, row, "cpu_milli"),
                memory_mib=_int(path, line, row, "memory_mib"),
                num_gpu=_int(path, line, row, "num_gpu"),
                gpu_milli=gpu_milli,
                qos=(row.get("qos") or "").strip(),
                phase=(row.get("pod_phase") or "").strip(),
                created_s=_int(path, line, row, "creation_time"),
                deleted_s=_int(path, line, row, "deletion_time"),
                scheduled_s=None if scheduled < 0 else scheduled,
            )
        )
    return pods


def alive_at(pods: Iterable[Pod], instant_s: int) -> list[Pod]:
    """The pods running at `instant_s`, in file order."""
    return [pod for pod in pods if pod.alive_at(instant_s)]


def reduce_nodes(nodes: Sequence[Node], per_kind: int) -> list[Node]:
    """At most `per_kind` nodes of each kind (the first in file order), file order kept.

    With `per_kind` >= the number of pods this changes no optimum: a plan uses at most
    one node per pod, and nodes of a kind are interchangeable.
    """
    kept: list[Node] = []
    seen: dict[tuple[str, int, int, int], int] = {}
    for node in nodes:
        count = seen.get(node.kind, 0)
        if count < per_kind:
            kept.append(node)
            seen[node.kind] = count + 1
    return kept


def to_problem(nodes: Sequence[Node], pods: Sequence[Pod]) -> Problem:
    """Pack `pods` onto `nodes` (reduced to at most one node per pod and kind)."""
    hosts = reduce_nodes(nodes, max(len(pods), 1))
    return Problem(
        hosts=[
            Host(
                name=node.name,
                capacity={CPU: node.cpu_milli, MEMORY: node.memory_mib, GPU: node.gpus * 1000},
                labels=frozenset({f"gpu-{node.model}"} if node.model else set()),
            )
            for node in hosts
        ],
        guests=[
            Guest(
                name=pod.name,
                demand={CPU: pod.cpu_milli, MEMORY: pod.memory_mib, GPU: pod.gpu_demand},
            )
            for pod in pods
        ],
        objective=["placed", "consolidate"],
    )


def instant_problem(instant_s: int, folder: str | Path = DATA) -> Problem:
    """The problem of the pods alive at `instant_s`, from the trace files in `folder`."""
    folder = Path(folder)
    nodes = read_nodes(folder / NODES_FILE)
    pods = alive_at(read_pods(folder / PODS_FILE), instant_s)
    if not pods:
        raise ValueError(f"no pod of {folder / PODS_FILE} is alive at {instant_s} s")
    return to_problem(nodes, pods)


def extract(source: str | Path, out: str | Path, instants: Sequence[int] = INSTANTS) -> int:
    """Write the committed subset: the node list unchanged, and the rows of the pod list
    alive at one of `instants` (header and row text unchanged). Returns the pod count."""
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    read_nodes(source / NODES_FILE)  # refuse a malformed source before copying it
    shutil.copyfile(source / NODES_FILE, out / NODES_FILE)
    pods = read_pods(source / PODS_FILE)
    keep = {pod.name for pod in pods if any(pod.alive_at(t) for t in instants)}
    lines = (source / PODS_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0] in keep]
    (out / PODS_FILE).write_text("".join(kept), encoding="utf-8")
    return len(kept) - 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alibaba", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cut = commands.add_parser("extract", help="write the subset of the trace the suites use")
    cut.add_argument("source", help="folder holding the trace's two CSV files")
    cut.add_argument("--out", default=str(DATA))
    args = parser.parse_args(argv)
    try:
        count = extract(args.source, args.out)
    except (OSError, FormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{count} pods alive at {len(INSTANTS)} instants written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
