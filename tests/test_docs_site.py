"""The documentation site: its nav, its generated pages, and the claims of the concepts page.

`mkdocs build --strict` (in .ci/run) catches broken links and anchors; these tests catch
what it cannot: a page left out of the nav, a snippet that is not a valid problem file, a
concepts claim the solvers or the checker contradict, a generated reference that misses a
key or an option.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import itertools
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from placement import Action, InvalidInputError, SolveOptions, check, load_problem, solve
from placement.cli import build_parser
from placement.diagnostics import diagnose
from placement.model import Problem
from placement.plan import Plan
from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def _hook(name: str = "generated_pages") -> ModuleType:
    """The docs hook `docs/hooks/<name>.py`, loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOK = _hook()


def _nav_paths() -> list[str]:
    """The page paths of mkdocs.yml's nav, read without a YAML library (tests need none)."""
    lines = (ROOT / "mkdocs.yml").read_text().splitlines()
    start = lines.index("nav:")
    paths = []
    for line in lines[start + 1 :]:
        if line and not line.startswith((" ", "#")):
            break  # the next top-level key
        match = re.fullmatch(r"\s*-\s*(?:[^:]+:\s*)?([\w./-]+\.md)\s*", line)
        if match:
            paths.append(match.group(1))
    return paths


# --- the nav -------------------------------------------------------------------------------


def test_nav_names_every_page_in_docs() -> None:
    on_disk = {
        path.relative_to(DOCS).as_posix()
        for path in DOCS.rglob("*.md")
        if "hooks" not in path.relative_to(DOCS).parts
    }
    missing = sorted(on_disk - set(_nav_paths()))
    assert not missing, f"add these pages to the nav of mkdocs.yml: {missing}"


def test_every_nav_page_exists_or_is_generated() -> None:
    nav = _nav_paths()
    assert len(nav) == len(set(nav)), "a page is named twice in the nav"
    on_disk = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    generated = {HOOK.SCHEMA_PAGE, HOOK.CLI_PAGE}
    for path in nav:
        if path in on_disk or path in generated:
            continue
        module = HOOK.api_module(path)
        assert module is not None, f"mkdocs.yml names {path}, which is not in docs/"
        assert importlib.util.find_spec(module) is not None, f"{path}: no module {module}"


def test_generated_pages_cover_the_nav_api_entries() -> None:
    nav = [{"API": ["api/index.md", "api/model.md", "api/solvers.md"]}, "index.md"]
    pages = HOOK.generated_pages(nav, existing={"api/index.md", "index.md"})
    assert set(pages) == {"schema.md", "cli.md", "api/model.md", "api/solvers.md"}
    assert "::: placement.model" in pages["api/model.md"]


def test_an_api_page_for_a_missing_module_stops_the_build() -> None:
    with pytest.raises(LookupError, match=r"placement\.no_such_module"):
        HOOK.generated_pages(["api/no_such_module.md"], existing=set())


def test_api_pages_show_attrs_defaults_not_attrs_calls() -> None:
    griffe = pytest.importorskip("griffe", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location(
        "attrs_defaults", DOCS / "hooks" / "attrs_defaults.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = griffe.load(
        "placement.model",
        search_paths=[str(ROOT)],
        extensions=griffe.load_extensions(module.AttrsFieldDefaults()),
    )
    boot = model["BootProfile"]
    assert str(boot["duration_s"].value) == "60"
    assert str(boot["load"].value) == "dict()"
    assert model["Host"]["name"].value is None  # required: no default to show
    assert str(model["HostState"]["ONLINE"].value) == "'online'"  # not an attrs field


# --- the generated references --------------------------------------------------------------


def _schema_keys(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.get("properties", {}).items():
            found.add(key)
            found |= _schema_keys(value)
        found |= _schema_keys(schema.get("items"))
    return found


def test_schema_reference_lists_every_key_with_its_description() -> None:
    page = HOOK.schema_reference_markdown()
    rows = set(re.findall(r"^\| `([A-Za-z_$]+)` \|", page, flags=re.MULTILINE))
    missing = (_schema_keys(PROBLEM_SCHEMA) | _schema_keys(PLAN_SCHEMA)) - rows
    assert not missing, f"the schema reference has no row for {sorted(missing)}"
    # Spot checks that the cells say what the schema says.
    assert "### `guests[].boot`" in page
    assert "### `hosts[]`" in page
    assert "Seconds from start until ready (default 60)." in page
    assert re.search(
        r"^\| `capacity` \| \{name: integer ≥ 0, ≤ 10\^12\} \| yes \|", page, re.MULTILINE
    )


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.add(f"`{sub.prog}`")
                found |= _options(sub)
                assert name in sub.prog
        elif not isinstance(action, argparse._HelpAction):
            found |= {f"`{option}" for option in action.option_strings}
    return found


def test_cli_reference_names_every_command_and_option() -> None:
    page = HOOK.cli_reference_markdown()
    missing = sorted(text for text in _options(build_parser()) if text not in page)
    assert not missing, f"the CLI reference misses {missing}"
    assert "| `--time-limit` `TIME_LIMIT` | seconds (default 10) | default `10.0` |" in page


# --- the concepts page ---------------------------------------------------------------------

SNIPPETS = dict(
    re.findall(r'```json title="([^"]+)"\n(.*?)\n```', (DOCS / "concepts.md").read_text(), re.S)
)


def test_concepts_page_has_its_snippets() -> None:
    assert set(SNIPPETS) == {
        "boot-storm.json",
        "staggered-starts.json",
        "host-overload.json",
        "who-shares.json",
        "frozen-guest.json",
        "start-order.json",
        "not-enough-room.json",
        "maintenance.json",
    }


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_concepts_snippet_is_a_valid_problem_file(name: str) -> None:
    # load_problem applies the JSON Schema and the references between objects.
    problem = load_problem(json.loads(SNIPPETS[name]))
    assert problem.guests


def _problem(name: str) -> Problem:
    return load_problem(json.loads(SNIPPETS[name]))


def _solve(problem: Problem, solver: str, schedule: str = "list") -> Plan:
    return solve(problem, solver, SolveOptions(time_limit_s=3, schedule=schedule, seed=0))


def _hosts(plan: Plan) -> dict[str, str | None]:
    return {a.guest: a.host for a in plan.assignments}


def _rules(problem: Problem, plan: Plan) -> set[str]:
    return {violation.rule for violation in check(problem, plan).violations}


def test_boot_storm_all_at_once_breaks_the_pool_and_the_optimiser_does_not() -> None:
    problem = _problem("boot-storm.json")
    storm = _solve(problem, "first-fit", "all-at-once")
    assert _rules(problem, storm) == {"pool_capacity"}
    assert check(problem, storm).metrics["pools"]["san_iops"]["peak"] == 7000
    plan = _solve(problem, "cpsat")
    assert check(problem, plan).ok
    starts = {a.guest: (a.start_s, a.ready_s) for a in plan.assignments}
    # sql01 and rds01 (6500 IOPS together) never boot at once.
    (sql_start, sql_ready), (rds_start, rds_ready) = starts["sql01"], starts["rds01"]
    assert sql_ready <= rds_start or rds_ready <= sql_start


def test_staggered_starts_share_a_group_instant_and_respect_the_limits() -> None:
    problem = _problem("staggered-starts.json")
    plan = _solve(problem, "first-fit")
    assert check(problem, plan).ok
    starts = {a.guest: a.start_s for a in plan.assignments}
    assert starts["lin01"] == starts["lin02"]
    instants = sorted(set(starts.values()))
    assert all(b - a >= 45 for a, b in itertools.pairwise(instants))
    assert {"max_starts", "host_max_starts", "stagger"} <= _rules(
        problem, _solve(problem, "first-fit", "all-at-once")
    )


def test_host_overload_usable_amounts_and_the_proxmox_overload() -> None:
    problem = _problem("host-overload.json")
    pve1 = problem.host("pve1")
    assert (pve1.usable("ram_mib"), pve1.usable("vcpus")) == (61440, 64)
    for solver in ("cpsat", "first-fit"):
        plan = _solve(problem, solver)
        assert check(problem, plan).ok
        hosts = _hosts(plan)
        assert hosts["sql01"] != hosts["sql02"]
        assert [u.guest for u in plan.unplaced] == ["test01"]
    proxmox = _solve(problem, "proxmox-static")
    violations = check(problem, proxmox).violations
    assert [(v.rule, v.hosts) for v in violations] == [("capacity", ("pve1",))]


def test_who_shares_a_host_every_valid_plan_follows_the_rules() -> None:
    problem = _problem("who-shares.json")
    for solver in ("cpsat", "first-fit", "worst-fit"):
        plan = _solve(problem, solver)
        assert check(problem, plan).ok
        hosts = _hosts(plan)
        assert hosts["dc01"] != hosts["dc02"]
        assert hosts["shop-app01"] == hosts["shop-redis01"] is not None
        assert (hosts["pg01"], hosts["backup01"]) == ("hv01", "hv02")


def test_frozen_guest_replacement_elsewhere_and_its_copy_costs_room() -> None:
    problem = _problem("frozen-guest.json")
    plan = _solve(problem, "cpsat")
    assert check(problem, plan).ok
    assert _hosts(plan) == {"app02": "hv01", "web01": None}
    assert [u.guest for u in plan.unplaced] == ["web01"]
    assert plan.unplaced[0].reason


def test_start_order_reaches_the_critical_path_and_proves_it() -> None:
    problem = _problem("start-order.json")
    plan = _solve(problem, "cpsat")
    assert check(problem, plan).ok
    ready = {a.guest: a.ready_s for a in plan.assignments}
    starts = {a.guest: a.start_s for a in plan.assignments}
    assert starts["app01"] >= ready["pg01"]
    assert starts["web01"] >= ready["app01"]
    makespan = next(stage for stage in plan.stages if stage.name == "makespan")
    assert makespan.value == makespan.bound == 125 + 85 + 80
    cyclic = json.loads(SNIPPETS["start-order.json"])
    cyclic["guests"][0]["boot"]["after"] = ["web01"]
    with pytest.raises(InvalidInputError, match="cycle"):
        load_problem(cyclic)


def test_not_enough_room_priorities_decide_and_reasons_are_given() -> None:
    problem = _problem("not-enough-room.json")
    assert [d.guests for d in diagnose(problem)] == [("ml-train01",)]
    plan = _solve(problem, "cpsat")
    assert check(problem, plan).ok
    assert {u.guest for u in plan.unplaced} == {"elk01", "ml-train01"}
    assert all(u.reason for u in plan.unplaced)
    assert _hosts(plan)["sql01"] == _hosts(plan)["wiki01"] == "pve1"


def test_maintenance_moves_only_what_it_must() -> None:
    problem = _problem("maintenance.json")
    plan = _solve(problem, "cpsat")
    report = check(problem, plan)
    assert report.ok
    actions = {a.guest: a.action for a in plan.assignments}
    assert actions == {"db01": Action.MIGRATE, "app01": Action.STAY, "app02": Action.STAY}
    assert report.metrics["objectives"]["migrations"] == 4


def test_nested_lists_are_indented_four_spaces() -> None:
    """Python-Markdown nests a list only under four spaces: with three, the optimiser
    page's numbered steps once became nine items instead of four. No list item in the
    docs (outside code blocks) may start after one to three spaces."""
    misplaced = []
    for page in sorted(DOCS.rglob("*.md")):
        in_code = False
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
            elif not in_code and re.match(r"^ {1,3}(?:[-*+]|\d+\.) ", line):
                misplaced.append(f"{page.relative_to(DOCS)}:{number}: {line.strip()[:50]}")
    assert not misplaced, misplaced


def test_the_optimiser_page_lists_its_five_steps() -> None:
    import markdown

    text = (DOCS / "optimiser.md").read_text()
    section = text[text.index("## What a solve does") : text.index("### 1. A first plan")]
    html = markdown.markdown(section)
    assert html.count("<ol>") == 1
    assert html.count("<li>") == 5


def test_enum_members_are_one_table_not_one_heading_each() -> None:
    import griffe

    module = _hook("enum_members")
    loaded = griffe.load(
        "placement.model",
        extensions=griffe.Extensions(module.EnumMembersTable()),
        search_paths=[str(ROOT)],
    )
    state = loaded["HostState"]
    assert [name for name in state.members if not name.startswith("_")] == []
    assert state.docstring is not None
    assert "| `ONLINE` | `'online'` |" in state.docstring.value
    assert "| `FAILED` | `'failed'` |" in state.docstring.value


def test_notebook_pages_hold_their_notebooks_current_code() -> None:
    """docs/notebooks/NAME.md is what `python -m bench.notebooks.gallery` wrote from the
    notebook as it is now: every code cell is there, verbatim."""
    pytest.importorskip("nbformat", reason="the bench extra is not installed")
    from bench.notebooks.build import notebooks
    from bench.notebooks.gallery import EXECUTED

    built = notebooks()
    for name in EXECUTED:
        page = (DOCS / "notebooks" / name.replace(".ipynb", ".md")).read_text()
        for cell in built[name].cells:
            if cell.cell_type == "code":
                assert f"```python\n{cell.source}\n```" in page, name
        for image in re.findall(r"\]\(\.\./img/notebooks/([^)]+)\)", page):
            assert (DOCS / "img" / "notebooks" / image).is_file()
    gallery = (DOCS / "notebooks" / "index.md").read_text()
    assert "[A tour: one failover, three ways](tour.md)" in gallery
    assert "](../img/notebooks/tour-1.png)" in gallery


def test_an_executed_notebook_becomes_a_page_with_its_figures() -> None:
    nbformat = pytest.importorskip("nbformat", reason="the bench extra is not installed")
    from bench.notebooks.gallery import to_markdown

    png = b"\x89PNG\r\n\x1a\nfake"
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title\n\nSummary."),
            nbformat.v4.new_code_cell(
                "print(1)",
                outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text="1\n"),
                    nbformat.v4.new_output(
                        "display_data", data={"image/png": base64.b64encode(png).decode()}
                    ),
                    nbformat.v4.new_output("display_data", data={"text/markdown": "| a |"}),
                ],
            ),
        ]
    )
    page, images = to_markdown(notebook, "demo")
    assert images == {"demo-1.png": png}
    assert "# Title\n\nSummary." in page
    assert "```python\nprint(1)\n```" in page
    assert "```text\n1\n```" in page
    assert "![Figure 1 of demo](../img/notebooks/demo-1.png)" in page
    assert "| a |" in page
