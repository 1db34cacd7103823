"""The notebooks of bench/notebooks/ execute headless on a tiny suite, so they cannot rot.

Needs the `bench` extra (nbclient, nbformat, ipykernel, matplotlib); CI installs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

nbclient = pytest.importorskip(
    "nbclient", reason="the notebooks need the bench extra: pip install -e '.[bench]'"
)
nbformat = pytest.importorskip("nbformat", reason="the bench extra is not installed")
pytest.importorskip("ipykernel", reason="the bench extra is not installed")
pytest.importorskip("matplotlib", reason="the bench extra is not installed")

from bench.notebooks.build import notebooks  # noqa: E402
from bench.run import parse_solvers, read_rows, run_suite  # noqa: E402
from bench.suites import suite  # noqa: E402

FOLDER = Path(__file__).resolve().parent.parent / "bench" / "notebooks"
NAMES = sorted(path.name for path in FOLDER.glob("*.ipynb"))


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results of the tiny suite (one instance per family), the optimiser and two
    baselines, 1 s each."""
    out = tmp_path_factory.mktemp("bench") / "tiny.jsonl"
    rows = list(
        run_suite(
            suite_name="tiny",
            instances=suite("tiny"),
            solvers=parse_solvers("cpsat,first-fit,proxmox-static"),
            time_limit_s=1.0,
            out=out,
            jobs=2,
        )
    )
    assert rows
    assert all(row["status"] not in ("error", "killed") for row in rows)
    return out


@pytest.fixture
def environment(tiny_results: Path) -> Iterator[None]:
    keys = ("BENCH_RESULTS", "BENCH_TIME_LIMIT", "BENCH_SIM_RUNS")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ["BENCH_RESULTS"] = str(tiny_results)
    os.environ["BENCH_TIME_LIMIT"] = "1"
    os.environ["BENCH_SIM_RUNS"] = "5"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_committed_notebooks_are_the_builders() -> None:
    """bench/notebooks/*.ipynb are what `python -m bench.notebooks.build` writes."""
    built = notebooks()
    assert sorted(built) == NAMES
    for name, notebook in built.items():
        committed = nbformat.read(FOLDER / name, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in notebook.cells], name


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name: str, tiny_results: Path) -> None:
    notebook = nbformat.read(FOLDER / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(FOLDER)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", "")) for o in outputs
    )
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    if name == "tour.ipynb":
        assert "| cpsat | 0 |" in text  # the optimiser's plan breaks no rule
        # The conclusion is written from the run's numbers: placed first, then recovery.
        assert "**Placed first.** The optimiser places " in text
        assert "**Then recovery.** On the " in text
        assert "the checker rejects it" in text
        assert "lower priority-weighted" not in text
        assert len(images) >= 2  # the plans on the same axes, and the Gantt chart
    elif name == "simulation.ipynb":
        assert "plan valid: True" in text
        # Run by readiness the plan keeps the SAN within its limit, even thrashing.
        peaks = re.findall(r"\| readiness-(?:gated|backfill) \|[^|]*\|[^|]*\| ([0-9.]+)x \|", text)
        assert len(peaks) == 4
        assert all(float(peak) <= 1.0 for peak in peaks)
        assert len(images) >= 1
    else:
        assert f"from {tiny_results}" in text
        assert "## Verdict" in text
        assert len(images) >= 3
    assert read_rows(tiny_results)  # the notebooks only read the results
