"""The notebooks in the documentation site, with their figures (run after changing them):

    python -m bench.notebooks.gallery

Executes the notebooks that need no benchmark results (`tour.ipynb`, `simulation.ipynb`)
and writes each as a page, `docs/notebooks/NAME.md`: its text, its code, what the code
printed and its figures (`docs/img/notebooks/NAME-N.png`). `docs/notebooks/index.md` is the
gallery: every notebook of bench/notebooks/ with its first figure, the suite notebooks
with the benchmark figures they draw. Pages and images are written whole or not at all.
tests/test_docs_site.py checks that each page holds its notebook's current code.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import nbformat

from bench.notebooks.build import HERE, SUITE_NOTEBOOKS, notebooks
from placement.codec import write_bytes_atomic

ROOT = HERE.parent.parent
PAGES = ROOT / "docs" / "notebooks"
IMAGES = ROOT / "docs" / "img" / "notebooks"
#: The notebooks executed for the site (the suite notebooks need a results file).
EXECUTED = ("tour.ipynb", "simulation.ipynb")


def execute(name: str) -> nbformat.NotebookNode:
    """Run bench/notebooks/NAME headless and return it with its outputs."""
    import nbclient

    notebook = nbformat.read(HERE / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    )
    client.execute()
    return notebook


def _fenced(language: str, text: str) -> list[str]:
    return [f"```{language}", text.rstrip("\n"), "```", ""]


def to_markdown(notebook: Any, stem: str) -> tuple[str, dict[str, bytes]]:
    """An executed notebook as a Markdown page and its PNG figures (file name -> bytes):
    Markdown cells as they are, code in fences, printed text in `text` fences, Markdown
    output as it is, each figure as an image below `../img/notebooks/`."""
    lines: list[str] = [
        f"<!-- Written by python -m bench.notebooks.gallery from bench/notebooks/{stem}.ipynb;"
        " do not edit. -->",
        "",
    ]
    images: dict[str, bytes] = {}
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            lines += [cell.source, ""]
            continue
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        lines += _fenced("python", cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                lines += _fenced("text", output["text"])
            elif "image/png" in data:
                name = f"{stem}-{len(images) + 1}.png"
                images[name] = base64.b64decode(data["image/png"])
                lines += [f"![Figure {len(images)} of {stem}](../img/notebooks/{name})", ""]
            elif "text/markdown" in data:
                lines += [data["text/markdown"], ""]
    return "\n".join(lines).rstrip("\n") + "\n", images


def _title_and_summary(notebook: Any) -> tuple[str, str]:
    first = notebook.cells[0].source.split("\n\n")
    return first[0].lstrip("# ").strip(), (first[1].strip() if len(first) > 1 else "")


def gallery_markdown(built: dict[str, Any], figures: dict[str, str]) -> str:
    """The gallery page: each notebook's title, summary and first figure (`figures`:
    notebook stem -> image path relative to the page), with a link to its page."""
    lines = [
        "# Notebooks",
        "",
        "The notebooks of `bench/notebooks/`, built by `python -m bench.notebooks.build` and",
        "executed headless by the tests on every change. The two below that need no",
        "benchmark results are shown executed, with their figures",
        "(`python -m bench.notebooks.gallery` writes these pages); the suite notebooks read a",
        "results file of `python -m bench run` and draw the figures of",
        "[the benchmark results](../benchmark-results.md).",
        "",
    ]
    for name in EXECUTED:
        stem = name.removesuffix(".ipynb")
        title, summary = _title_and_summary(built[name])
        lines += [f"## [{title}]({stem}.md)", "", summary, ""]
        if stem in figures:
            lines += [f"[![{title}]({figures[stem]})]({stem}.md)", ""]
    lines += [
        "## The suite notebooks",
        "",
        "| notebook | what it shows |",
        "|---|---|",
    ]
    for suite, (title, _) in SUITE_NOTEBOOKS.items():
        lines.append(f"| `suite-{suite}.ipynb` | {title} |")
    lines += [
        "",
        "Each reads `results/SUITE.jsonl` (or the file `BENCH_RESULTS` names) and draws the",
        "report's tables and three plots: the gap to the best proven bound per solver, the",
        "runtime against size, and the SAN load of the optimiser against the best baselines:",
        "",
        "![Gap to the best proven bound, per solver](../img/bench-gaps.png)",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    os.environ.setdefault("BENCH_TIME_LIMIT", "5")
    built = notebooks()
    figures: dict[str, str] = {}
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name in EXECUTED:
        stem = name.removesuffix(".ipynb")
        page, images = to_markdown(execute(name), stem)
        for image, data in images.items():
            write_bytes_atomic(IMAGES / image, data)
        if images:
            figures[stem] = f"../img/notebooks/{next(iter(images))}"
        write_bytes_atomic(PAGES / f"{stem}.md", page.encode())
        print(f"wrote {PAGES / stem}.md and {len(images)} figure(s)")
    write_bytes_atomic(PAGES / "index.md", gallery_markdown(built, figures).encode())
    print(f"wrote {PAGES / 'index.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
