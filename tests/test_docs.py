"""Keep the documentation in docs/ honest.

* every hook of :mod:`driftlab.hookspecs` has a heading in docs/plugin-guide.md;
* every command of ``driftlab --help`` (and every subcommand of its groups,
  e.g. ``driftlab data list``) is shown in docs/user-guide.md;
* every fenced ``python`` block of the docs pages runs without error, each in
  a fresh namespace and a temporary working directory, unless the block
  contains the comment ``# not run``; a block marked
  ``# not run: excerpt of PATH`` must quote lines PATH really contains;
* every ``driftlab ...`` command in an ``sh`` block parses with the CLI's own
  parser (existing commands and options, required arguments present);
* every pipeline TOML block (one with ``[[stages]]`` or ``[[pipeline]]``)
  resolves against the built-in stages;
* relative links point to files that exist, and the paper's twelve data-model
  names and the reference slot order appear in docs/concepts.md.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import click
import numpy as np
import pytest
import torch

from driftlab import hookspecs
from driftlab.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = (
    "index.md",
    "concepts.md",
    "plugin-guide.md",
    "user-guide.md",
    "engine.md",
    "forensics.md",
    "optimization.md",
)
NOT_RUN = "# not run"

# a fenced block, possibly indented by up to 3 spaces (inside a list item)
FENCE = re.compile(
    r"^(?P<indent> {0,3})```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _read(page: str) -> str:
    path = DOCS / page
    assert path.is_file(), f"missing documentation page {path}"
    return path.read_text(encoding="utf-8")


def fenced_blocks(text: str, lang: str) -> list[tuple[int, str]]:
    """``(line number, body)`` of every fenced block in language ``lang``."""
    return [
        (text.count("\n", 0, m.start()) + 1, textwrap.dedent(m.group("body")))
        for m in FENCE.finditer(text)
        if m.group("lang") == lang
    ]


def headings(text: str) -> list[str]:
    """Markdown heading lines outside fenced blocks, without the leading #s."""
    outside = FENCE.sub("", text)
    return [line.lstrip("#").strip() for line in outside.splitlines() if line.startswith("#")]


def hook_names() -> list[str]:
    """Names of the hook specifications (functions carrying pluggy's spec marker)."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return sorted(
        name
        for name in dir(hookspecs)
        if callable(getattr(hookspecs, name)) and hasattr(getattr(hookspecs, name), marker)
    )


def cli_commands() -> list[str]:
    """``driftlab CMD`` and ``driftlab GROUP SUB`` for every command ``--help`` lists."""
    found: list[str] = []

    def walk(group: click.Group, prefix: str) -> None:
        ctx = click.Context(group, info_name=prefix)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            found.append(f"{prefix} {name}")
            if isinstance(command, click.Group):
                walk(command, f"{prefix} {name}")

    walk(main, "driftlab")
    return found


def runnable_blocks() -> list[pytest.param]:
    params = []
    for page in PAGES:
        if not (DOCS / page).is_file():
            continue  # reported by test_every_page_exists
        for line, body in fenced_blocks(_read(page), "python"):
            if NOT_RUN not in body:
                params.append(pytest.param(page, line, body, id=f"{page}:{line}"))
    return params


# -- the selectors themselves --------------------------------------------------------------
def test_fenced_blocks_and_headings_are_found_as_written():
    text = (
        "# Title\n\n```python\nx = 1\n```\n\n## `driftlab_x`\n\n"
        "```sh\n# not a heading\n```\n\n```python\n# not run\nraise SystemExit\n```\n"
    )
    assert fenced_blocks(text, "python") == [(3, "x = 1\n"), (13, "# not run\nraise SystemExit\n")]
    assert headings(text) == ["Title", "`driftlab_x`"]


def test_hook_and_command_lists_are_complete():
    assert len(hook_names()) >= 6
    assert "driftlab_stages" in hook_names() and "driftlab_attacks" in hook_names()
    commands = cli_commands()
    assert {"driftlab render", "driftlab verify", "driftlab data", "driftlab data list"} <= set(
        commands
    )


# -- the documentation ---------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_every_page_exists(page):
    assert _read(page).startswith("# ")


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_heading_in_the_plugin_guide(hook):
    titles = headings(_read("plugin-guide.md"))
    assert any(re.search(rf"(^|[^\w]){hook}([^\w]|$)", t) for t in titles), (
        f"docs/plugin-guide.md has no heading for the hook {hook} "
        f"(add a section '### `{hook}`' with its arguments, return type and an example)"
    )


@pytest.mark.parametrize("command", cli_commands())
def test_every_cli_command_is_in_the_user_guide(command):
    text = re.sub(r"\s+", " ", _read("user-guide.md"))
    assert re.search(rf"{re.escape(command)}(?![\w-])", text), (
        f"docs/user-guide.md does not show the command `{command}`"
    )


def test_there_are_runnable_examples():
    pages = {p.values[0] for p in runnable_blocks()}
    assert "plugin-guide.md" in pages
    assert sum(p.values[0] == "plugin-guide.md" for p in runnable_blocks()) >= len(hook_names())


@pytest.mark.parametrize(("page", "line", "source"), runnable_blocks())
def test_python_block_runs(page, line, source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = compile(source, f"docs/{page} (block at line {line})", "exec")
    namespace = {"__name__": f"docs_example_{line}"}
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):  # examples may seed torch's global generator
            exec(code, namespace)
    finally:
        np.random.set_state(numpy_state)


def test_excerpts_match_their_files():
    """Blocks marked ``# not run: excerpt of PATH`` quote lines that PATH really has."""
    checked = 0
    for page in PAGES:
        for line, body in fenced_blocks(_read(page), "python"):
            match = re.search(r"# not run: excerpt of (\S+)", body)
            if not match:
                continue
            source = DOCS.parent / match.group(1)
            assert source.is_file(), f"docs/{page} line {line}: no file {match.group(1)}"
            have = {row.strip() for row in source.read_text(encoding="utf-8").splitlines()}
            quoted = [r.strip() for r in body.splitlines() if r.strip() and not r.startswith("#")]
            missing = [r for r in quoted if r not in have]
            assert missing == [], f"docs/{page} line {line}: not in {match.group(1)}: {missing}"
            checked += 1
    assert checked >= 1


def test_pipeline_toml_blocks_resolve():
    from driftlab.pipeline import PipelineSpec, resolve
    from driftlab.registry import Registry
    from driftlab.tomlio import tomllib

    registry = Registry.load(entry_points=False)
    camera = registry.camera("identity")
    checked = 0
    for page in PAGES:
        for line, body in fenced_blocks(_read(page), "toml"):
            if "[[stages]]" not in body and "[[pipeline" not in body:
                continue
            where = f"docs/{page} (block at line {line})"
            try:
                data = tomllib.loads(body)
            except tomllib.TOMLDecodeError as exc:
                raise AssertionError(f"{where}: invalid TOML: {exc}") from None
            for item in data.get("pipeline", [data]):
                resolve(PipelineSpec.from_dict(item, where=where), camera, registry)
                checked += 1
    assert checked >= 2, "expected pipeline TOML examples in the docs"


def shell_invocations(text: str) -> list[tuple[int, list[str]]]:
    """``(line, argv)`` of every ``driftlab ...`` command in the ``sh`` blocks of ``text``.

    Continuation lines are joined; comments and output redirections are dropped.
    """
    found = []
    for first, body in fenced_blocks(text, "sh"):
        command, start = "", 0
        for number, line in enumerate(body.splitlines(), start=first + 1):
            start = start or number
            if line.rstrip().endswith("\\"):
                command += line.rstrip()[:-1] + " "
                continue
            words = shlex.split(command + line, comments=True)
            command, begun = "", start
            start = 0
            if words[:1] != ["driftlab"]:
                continue
            if ">" in words:
                words = words[: words.index(">")]
            found.append((begun, words[1:]))
    return found


def parse_invocation(argv: list[str]) -> click.Command:
    """Parse ``driftlab ARGV`` with the CLI's own option parser, without running anything.

    Values are not converted (files need not exist) and no callback runs.

    Raises
    ------
    click.UsageError
        Unknown command or option, an option without its value, a missing
        required argument or option, or extra arguments.
    """
    command: click.Command = main
    ctx = click.Context(main, info_name="driftlab")
    args = list(argv)
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name = args.pop(0)
        sub = command.get_command(ctx, name)
        if sub is None:
            raise click.UsageError(f"no such command {name!r}")
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    values, extra, _ = command.make_parser(ctx).parse_args(args=args)
    eager = any(p.is_eager and p.name in values for p in command.params)  # --help, --version
    missing = [p.name for p in command.params if p.required and p.name not in values]
    if missing and not eager:
        raise click.UsageError(f"missing {', '.join(missing)}")
    if extra and not isinstance(command, click.Group):
        raise click.UsageError(f"unexpected extra arguments {extra}")
    return command


def test_invocation_parser_rejects_unknown_commands_and_options():
    assert parse_invocation(["render", "x.raw", "--out", "o", "--bits", "10"]).name == "render"
    assert parse_invocation(["data", "check", "raw-drone", "--intensity", "1"]).name == "check"
    assert parse_invocation(["--version"]).name == "main"
    bad_calls = (
        ["rendr", "x.raw"],
        ["render", "x.raw", "--bitz", "10", "--out", "o"],
        ["render", "x.raw", "--out"],
        ["render", "x.raw"],
        ["report", "a", "b"],
        ["data", "chek", "x"],
    )
    for bad in bad_calls:
        with pytest.raises(click.UsageError):
            parse_invocation(bad)


@pytest.mark.parametrize("page", PAGES)
def test_shell_examples_use_existing_commands_and_options(page):
    problems = []
    for line, argv in shell_invocations(_read(page)):
        try:
            parse_invocation(argv)
        except click.UsageError as exc:
            problems.append(f"line {line}: driftlab {' '.join(argv)}: {exc.format_message()}")
    assert problems == [], f"docs/{page}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_point_to_existing_files(page):
    broken = []
    for match in LINK.finditer(FENCE.sub("", _read(page))):
        target = match.group("target")
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (DOCS / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == [], f"docs/{page}: links to missing files: {broken}"


def test_concepts_names_the_twelve_data_models():
    from driftlab.pipeline import PAPER_DATA_MODELS, REFERENCE_SLOTS

    text = _read("concepts.md")
    missing = [name for name in PAPER_DATA_MODELS if f"`{name}`" not in text]
    assert missing == [], f"docs/concepts.md does not name the data models {missing}"
    assert " -> ".join(REFERENCE_SLOTS) in re.sub(r"\s+", " ", text)


README = DOCS.parent / "README.md"


@pytest.mark.slow
@pytest.mark.parametrize(("line", "source"), fenced_blocks(README.read_text(), "python"))
def test_readme_python_blocks_run_as_written(line, source, tmp_path, monkeypatch):
    """README snippets run as a user runs them: from the repository root, as a script."""
    (tmp_path / "examples").symlink_to(DOCS.parent / "examples")
    monkeypatch.chdir(tmp_path)
    code = compile(source, f"README.md (block at line {line})", "exec")
    with torch.random.fork_rng(devices=[]):
        exec(code, {"__name__": "__main__"})
