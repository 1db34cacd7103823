"""The pictures of the documentation that show plans (run after changing the plot):

    python -m bench.pictures [--time-limit 10]

- `docs/img/recovery-cpsat-vs-serial45.png` (home page, getting started): the single-host
  restart planned by the optimiser and by first fit with `serial:45` (a start every 45 s,
  what operators script), on the same axes: guests up over time and the SAN load.
- `docs/img/plot-all-at-once.png` (HA operations): `placement plot` of Proxmox's static
  scheduler starting every guest at once: the checker's verdict in the title, the SAN and
  the host's boot CPU above their limits in red.

Each is written whole or not at all. tests/test_plot_figures.py draws the same figures
from fast plans and checks what they show.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from placement import SolveOptions, solve
from placement.codec import load_problem_file, write_bytes_atomic
from placement.model import Problem
from placement.plan import Plan
from placement.plot import compare_figure, plan_figure

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "single-host-restart.json"
IMAGES = ROOT / "docs" / "img"


def home_figure(problem: Problem, optimiser: Plan, serial: Plan) -> Any:
    """The optimiser's plan against a serial start every 45 s, on the same axes."""
    figure = compare_figure(
        problem,
        [optimiser, serial],
        labels=[f"{optimiser.solver} (placement and start times together)", "serial:45"],
    )
    figure.suptitle(
        f"{len(problem.guests)} guests restart after a host failure: the optimiser against "
        "a start every 45 s",
        fontweight="bold",
    )
    return figure


def _png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pictures", description=__doc__)
    parser.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds (10)")
    args = parser.parse_args(argv)
    problem = load_problem_file(EXAMPLE)
    optimiser = solve(problem, "cpsat", SolveOptions(time_limit_s=args.time_limit))
    serial = solve(problem, "first-fit", SolveOptions(schedule="serial:45"))
    storm = solve(problem, "proxmox-static", SolveOptions(schedule="all-at-once"))
    made = {
        "recovery-cpsat-vs-serial45.png": home_figure(problem, optimiser, serial),
        "plot-all-at-once.png": plan_figure(problem, storm),
    }
    for name, figure in made.items():
        write_bytes_atomic(IMAGES / name, _png(figure))
        print(f"wrote {IMAGES / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
