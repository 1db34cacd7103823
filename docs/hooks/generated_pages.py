"""MkDocs hook: pages written at build time from the code, so they cannot fall behind it.

- `schema.md`: the JSON Schema reference, from `placement.schema` (problem and plan).
- `cli.md`: every subcommand and option, from `placement.cli.build_parser()`, including
  the subcommands other modules add through `placement.cli.COMMAND_MODULES`.
- `api/<name>.md`: for each nav entry of that form with no file on disk, a page rendering
  module `placement.<name>` with mkdocstrings. A new API page is one nav line; a nav line
  naming a module that does not exist stops the build.

The generators below are plain functions of the package (no MkDocs import), so
tests/test_docs_site.py checks them without building the site.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

API_PREFIX = "api/"
SCHEMA_PAGE = "schema.md"
CLI_PAGE = "cli.md"

# --- the JSON Schema reference ------------------------------------------------------------


def _escape(text: str) -> str:
    """Text for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _type_of(schema: dict[str, Any]) -> str:
    """A short human name of what a schema accepts (`integer ≥ 0`, `list of strings`)."""
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    types = schema.get("type", "any")
    names = [types] if isinstance(types, str) else list(types)
    parts: list[str] = []
    for name in names:
        if name == "array":
            items = schema.get("items", {})
            item = _type_of(items) if isinstance(items, dict) else "any"
            if items.get("type") == "object" and "properties" in items:
                item = "object"
            if item in ("string", "integer", "number", "boolean", "object"):
                item += "s"
            parts.append(f"list of {item}")
        elif name == "object" and "additionalProperties" in schema and "properties" not in schema:
            values = schema["additionalProperties"]
            value = _type_of(values) if isinstance(values, dict) else "any"
            parts.append(f"{{name: {value}}}")
        else:
            parts.append(name + _limits(schema) if name in ("integer", "number") else name)
    return " \\| ".join(parts)


def _limits(schema: dict[str, Any]) -> str:
    limits = []
    if "minimum" in schema:
        limits.append(f" ≥ {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        limits.append(f" > {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        most = schema["maximum"]
        power = isinstance(most, int) and most >= 10**6 and str(most).rstrip("0") == "1"
        limits.append(f" ≤ 10^{len(str(most)) - 1}" if power else f" ≤ {most}")
    return ",".join(limits)


def _notes(schema: dict[str, Any]) -> str:
    notes = []
    if schema.get("uniqueItems"):
        notes.append("no duplicates")
    if schema.get("minLength"):
        notes.append("not empty")
    if "not" in schema:
        notes.append("no control characters")
    if isinstance(schema.get("items"), dict) and schema["items"].get("minLength"):
        notes.append("names not empty, no control characters")
    if "default" in schema:
        notes.append(f"default `{json.dumps(schema['default'])}`")
    for example in schema.get("examples", [])[:1]:
        notes.append(f"e.g. `{json.dumps(example)}`")
    return "; ".join(notes)


def _described(schema: dict[str, Any]) -> str:
    """A property's title in bold, then its description (when it says more)."""
    title, description = schema.get("title", ""), schema.get("description", "")
    if title and description and description != title:
        return f"**{title}.** {description}"
    return f"**{title}.**" if title else description


def _objects(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object with named properties inside `schema`, outermost first, with its path."""
    kind = schema.get("type")
    # An object that may also be null (`pacemaker`) has its own table too.
    if (kind == "object" or (isinstance(kind, list) and "object" in kind)) and (
        "properties" in schema
    ):
        yield path, schema
        for key, child in schema["properties"].items():
            yield from _objects(child, f"{path}.{key}" if path else key)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _objects(items, f"{path}[]")


def _anchor(prefix: str, path: str) -> str:
    """The heading id of an object's section: `problem-guests-boot` for `guests[].boot`."""
    return f"{prefix}-{path.replace('[]', '').replace('.', '-') or 'top'}"


def _object_table(schema: dict[str, Any], prefix: str, path: str) -> list[str]:
    required = set(schema.get("required", ()))
    lines = [
        "| key | type | required | notes | description |",
        "|---|---|---|---|---|",
    ]
    for key, child in schema["properties"].items():
        kind = _type_of(child)
        child_path = f"{path}.{key}" if path else key
        items = child.get("items")
        # An object with its own section: link to it rather than say "object".
        if child.get("type") == "object" and "properties" in child:
            kind = f"[object](#{_anchor(prefix, child_path)})"
        elif isinstance(items, dict) and items.get("type") == "object" and "properties" in items:
            kind = f"list of [objects](#{_anchor(prefix, child_path + '[]')})"
        lines.append(
            f"| `{key}` | {kind} | {'yes' if key in required else ''} "
            f"| {_escape(_notes(child))} | {_escape(_described(child))} |"
        )
    return lines


def schema_reference_markdown() -> str:
    """The Markdown of the schema reference page, one table per object of each format."""
    from placement.model import SCHEMA_VERSION
    from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA

    lines = [
        "# JSON Schema reference",
        "",
        "This page is generated from `placement.schema` each time the documentation is",
        f"built: it is the structural rules of `schema_version` {SCHEMA_VERSION} exactly as",
        "`placement validate` applies them. The [format guide](format.md) explains each key",
        "with its defaults; [the rules](rules.md) say what makes a plan valid. No object",
        "accepts keys it does not list. `placement schema` prints the problem schema and",
        "`placement schema --plan` the plan schema, for editors and other tools.",
        "",
        "A path such as `guests[].boot` means the `boot` object of each item of `guests`.",
        "",
    ]
    for title, prefix, schema, command in (
        ("Problem file", "problem", PROBLEM_SCHEMA, "placement schema"),
        ("Plan file", "plan", PLAN_SCHEMA, "placement schema --plan"),
    ):
        lines += [f"## {title}", "", f"`$id`: `{schema['$id']}` (`{command}`)", ""]
        for path, obj in _objects(schema, ""):
            heading = f"`{path}`" if path else f"{title}: top level"
            lines += [f"### {heading} {{ #{_anchor(prefix, path)} }}", ""]
            if obj.get("description"):
                lines += [_escape(obj["description"]), ""]
            lines += [*_object_table(obj, prefix, path), ""]
    return "\n".join(lines)


# --- the command-line reference -----------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand of `parser`, in the order added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return found


def _usage(parser: argparse.ArgumentParser) -> str:
    # A fixed width, so the page does not depend on the terminal that builds it.
    formatter = argparse.HelpFormatter(parser.prog, width=88)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _argument_row(action: argparse.Action) -> str | None:
    if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
        return None
    if action.help == argparse.SUPPRESS:
        return None
    if action.option_strings:
        name = ", ".join(f"`{option}`" for option in action.option_strings)
        if action.nargs != 0:
            name += f" `{action.metavar or action.dest.upper()}`"
    else:
        name = f"`{action.metavar or action.dest}`"
    notes = []
    if action.choices is not None:
        notes.append("one of " + ", ".join(f"`{choice}`" for choice in action.choices))
    if action.option_strings and action.nargs != 0 and action.default not in (None, False):
        notes.append(f"default `{action.default}`")
    if action.required and action.option_strings:
        notes.append("required")
    return f"| {name} | {_escape(action.help or '')} | {_escape('; '.join(notes))} |"


def _command_section(
    parser: argparse.ArgumentParser, name: str, summary: str, depth: int
) -> list[str]:
    lines = [f"{'#' * depth} `{parser.prog}`", ""]
    if summary:
        lines += [summary[0].upper() + summary[1:] + ".", ""]
    if parser.description:
        lines += [parser.description, ""]
    lines += ["```", _usage(parser), "```", ""]
    rows = [row for row in map(_argument_row, parser._actions) if row is not None]
    if rows:
        lines += ["| argument | meaning | notes |", "|---|---|---|", *rows, ""]
    for sub_name, sub_help, sub in _subcommands(parser):
        lines += _command_section(sub, sub_name, sub_help, min(depth + 1, 6))
    return lines


def _power(value: int) -> str:
    return f"10^{len(str(value)) - 1}"


def _ranges_lines() -> list[str]:
    """The number ranges of `placement.limits`, as the CLI reference lists them."""
    from placement import limits

    return [
        f"- amounts (capacity, demand, reserved, boot load and CPU, pool limits): integers"
        f" 0 … {_power(limits.MAX_AMOUNT)}; summed per resource or pool over all guests or"
        f" hosts: ≤ {_power(limits.MAX_TOTAL)}",
        f"- `overcommit`: numbers > 0 and ≤ {limits.MAX_RATIO:g}",
        f"- `priority`, `migration_cost`: integers 0 … {_power(limits.MAX_PRIORITY)};"
        f" (priority + 1) x `horizon_s` summed over guests: ≤"
        f" {_power(limits.MAX_WEIGHTED_SECONDS)}",
        f"- durations (`duration_s`, `stagger_s`, `horizon_s`, `setup_s`): integers"
        f" 0 … {_power(limits.MAX_SECONDS)} s",
        f"- `max_starts`, `max_per_host`, `max_total`, `max_moves`: integers up to"
        f" {_power(limits.MAX_COUNT)}",
        f"- JSON nesting: ≤ {limits.MAX_DEPTH} levels",
    ]


def cli_reference_markdown() -> str:
    """The Markdown of the command-line reference page, from the real parser."""
    from placement import cli
    from placement.interrupt import EXIT_INTERRUPTED

    parser = cli.build_parser()
    lines = [
        "# Command-line reference",
        "",
        "This page is generated from `placement.cli.build_parser()` each time the",
        "documentation is built, so it lists every subcommand and option of this version,",
        "those that other modules add included. `placement COMMAND --help` prints the same.",
        "",
        "## Exit codes",
        "",
        "| code | meaning |",
        "|---|---|",
        f"| {cli.EXIT_OK} | success: the file is valid; the plan respects every rule and places"
        " every guest |",
        f"| {cli.EXIT_UNPLACED} | a valid plan that leaves some guests unplaced (each with its"
        " reason in the plan's `unplaced`) |",
        f"| {cli.EXIT_FAILED} | no plan, or a plan that violates a rule |",
        f"| {cli.EXIT_INVALID} | invalid input or usage: one line per problem on stderr, naming"
        " the file and the JSON path; never a traceback |",
        f"| {EXIT_INTERRUPTED} | interrupted (Ctrl-C): see below |",
        "",
        "Per command: `solve`, `failover`, `evacuate`, `rebalance` and `coldstart` use every",
        "code; `check` and `show` 0, 3, 1 or 2 for the plan they read; `validate` 0 for a",
        "valid file (its warnings name guests no plan can place) or 2; `import` 0, 1 with",
        "`--strict` when something could not be mapped, or 2; `export` 0, 1 for a plan that",
        "breaks a rule (not exported), or 2; `plot`, `schema` and `solvers` 0 or 2. Any",
        "command stopped by Ctrl-C exits 130.",
        "",
        "Invalid input (exit 2) includes a number outside its range, a key given twice in",
        "one object and a name holding a control character; the ranges are explained in",
        "[the JSON formats](format.md#ranges-names-and-what-is-refused):",
        "",
        *_ranges_lines(),
        "",
        "## Interrupting a run",
        "",
        "The first Ctrl-C (SIGINT) during `solve`, `failover`, `evacuate`, `rebalance`,",
        "`coldstart` or `python -m bench run` stops the search at once. The best plan found",
        "so far still goes through the checker and is written whole to `-o` (or printed),",
        "stderr says so in one line (`interrupted after 3.1 s: best plan so far, not",
        "proven`) and the exit code is 130. The plan's `metrics.interrupted` is `true`.",
        "A second Ctrl-C exits at once with 130, without a traceback; a file written",
        "earlier stays as it was, since plan files are replaced whole or not at all.",
        "`python -m bench run` keeps the rows of the runs it cut short, with status",
        "`interrupted`; reports leave them out and the next `run` repeats them.",
        "",
        "From the library, pass a `StopToken` in `SolveOptions(stop=...)` and call",
        "`token.stop()` from another thread: `solve` returns its best verified plan so far.",
        "",
        "## Progress",
        "",
        "The solving commands print progress on stderr when it is a terminal: the stage,",
        "the best value, CP-SAT's bound and gap, and the elapsed time. `--progress` prints",
        "it anywhere (a service log, CI): a line when a stage begins, then one at least",
        "every 5 s, repeating the latest figures when nothing new came. `--quiet` turns it",
        "off. `python -m bench run` shows a bar per suite on a terminal.",
        "",
        "## Commands",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    commands = _subcommands(parser)
    lines += [f"| [`{name}`](#placement-{name}) | {_escape(text)} |" for name, text, _ in commands]
    lines += [""]
    for name, text, sub in commands:
        lines += _command_section(sub, name, text, 2)
    return "\n".join(lines)


# --- API pages ----------------------------------------------------------------------------


def api_module(src_uri: str) -> str | None:
    """`placement.<name>` for a nav path `api/<name>.md`, or None for any other path."""
    path = PurePosixPath(src_uri)
    if not src_uri.startswith(API_PREFIX) or path.suffix != ".md" or path.stem == "index":
        return None
    return f"placement.{path.stem}"


def api_page_markdown(module: str) -> str:
    """A page that renders `module` from its docstrings; the module must exist."""
    if importlib.util.find_spec(module) is None:
        raise LookupError(f"mkdocs.yml names an API page for {module}, which does not exist")
    return f"# `{module}`\n\n::: {module}\n"


def nav_paths(nav: Any) -> Iterator[str]:
    """Every page path named in an MkDocs nav (a nested list of titles and paths)."""
    if isinstance(nav, str):
        if not nav.startswith(("http://", "https://")):
            yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_paths(value)


def generated_pages(nav: Any, existing: set[str]) -> dict[str, str]:
    """Path -> Markdown of every page this hook writes, given the nav and the files on disk."""
    pages = {
        SCHEMA_PAGE: schema_reference_markdown(),
        CLI_PAGE: cli_reference_markdown(),
    }
    for path in nav_paths(nav):
        module = api_module(path)
        if module is not None and path not in existing:
            pages[path] = api_page_markdown(module)
    return pages


# --- the MkDocs event ---------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site's files (MkDocs 1.6 `File.generated`)."""
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    existing = {file.src_uri for file in files}
    try:
        pages = generated_pages(config["nav"], existing)
    except LookupError as error:
        raise PluginError(str(error)) from error
    for path, markdown in pages.items():
        if path in existing:
            raise PluginError(f"docs/{path} is generated at build time; remove the file")
        files.append(File.generated(config, path, content=markdown))
    return files
