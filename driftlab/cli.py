"""The ``driftlab`` command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from driftlab import __version__
from driftlab.cfa import CFA_PATTERNS

__all__ = ["main"]


def _registry():
    from driftlab.registry import get_registry

    return get_registry()


def _parse_floats(value: str | None, option: str) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated numbers, got {value!r}", param_hint=option
        ) from None


def _parse_shape(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(
            f"expected HEIGHTxWIDTH in pixels such as 1080x1920, got {value!r}",
            param_hint="--shape",
        )
    return int(parts[0]), int(parts[1])


def _echo_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="driftlab")
def main() -> None:
    """driftlab: test ML models against camera hardware drift.

    Raw sensor data is rendered through explicit ISP pipelines (static and
    differentiable) so that a model can be trained under one camera
    processing and tested under others (Oala et al., TMLR 2023).
    """


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any plugin failed.")
def plugins(as_json: bool, strict: bool) -> None:
    """List installed plugins, where they come from and what they provide."""
    registry = _registry()
    if as_json:
        data = {
            "plugins": [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "module": p.module,
                    "builtin": p.builtin,
                    "provides": p.provides,
                }
                for p in registry.plugins
            ],
            "errors": [
                {"plugin": e.plugin, "distribution": e.distribution, "message": e.message}
                for e in registry.errors
            ],
        }
        click.echo(json.dumps(data, indent=2))
    else:
        rows = []
        for p in registry.plugins:
            provides = "; ".join(f"{kind}: {', '.join(keys)}" for kind, keys in p.provides.items())
            rows.append((p.name, p.distribution, p.version, provides or "-"))
        _echo_table(rows, ("plugin", "distribution", "version", "provides"))
        for e in registry.errors:
            click.echo(f"ERROR {e.plugin} ({e.distribution}): {e.message}")
    if strict and registry.errors:
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stages(as_json: bool) -> None:
    """List stage variants with their forms and parameter domains."""
    registry = _registry()
    items = registry.items("stages")
    if as_json:
        data = [
            {
                "key": key,
                "slot": s.slot,
                "variant": s.variant,
                "plugin": registry.owner("stages", key),
                "forms": list(s.forms),
                "input": s.input_kind,
                "output": s.output_kind,
                "doc": s.doc,
                "reference": s.reference,
                "params": [
                    {
                        "name": p.name,
                        "shape": list(p.shape),
                        "default": json.loads(json.dumps(p.default)),
                        "unit": p.unit,
                        "domain": p.domain.describe(),
                        "doc": p.doc,
                    }
                    for p in s.params
                ],
            }
            for key, s in sorted(items.items())
        ]
        click.echo(json.dumps(data, indent=2))
        return
    rows = []
    for key, s in sorted(items.items()):
        params = "; ".join(f"{p.name} {p.domain.describe(p.unit)}" for p in s.params) or "-"
        rows.append((key, "+".join(s.forms), registry.owner("stages", key), params))
    _echo_table(rows, ("stage", "forms", "plugin", "parameters (domain, unit)"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--show", "show", metavar="NAME", help="Print one pipeline's spec as TOML.")
def pipelines(as_json: bool, show: str | None) -> None:
    """List the named data models (the paper's twelve) and their stages."""
    from driftlab.pipeline import PAPER_DATA_MODELS, SpecError, get_pipeline

    if show is not None:
        try:
            spec = get_pipeline(show)
        except SpecError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            click.echo(json.dumps(spec.to_dict(), indent=2))
        else:
            import tomli_w

            click.echo(tomli_w.dumps(spec.to_dict()), nl=False)
        return
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in PAPER_DATA_MODELS.values()], indent=2))
        return
    rows = [
        (name, " -> ".join(f"{c.slot}.{c.variant}" if c.variant else c.slot for c in s.stages))
        for name, s in PAPER_DATA_MODELS.items()
    ]
    _echo_table(rows, ("name", "stages"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random test inputs.")
@click.option("--stage", "stage_keys", multiple=True, help="Only this slot.variant (repeatable).")
@click.option("--plugin", "plugin_names", multiple=True, help="Only this plugin's stages.")
def verify(
    as_json: bool, seed: int, stage_keys: tuple[str, ...], plugin_names: tuple[str, ...]
) -> None:
    """Check every stage with both forms: static == differentiable and gradcheck.

    Without --stage/--plugin, also checks the paper's twelve data models in
    all three forms (static, differentiable, fast render path). Exits with
    status 1 when anything fails. Plugin authors run this on their own
    stages (--plugin NAME).
    """
    from driftlab.registry import suggest
    from driftlab.verify import check_summary, report_lines, verify_data_models, verify_stage

    registry = _registry()
    stages = {k: s for k, s in registry.items("stages").items() if len(s.forms) == 2}
    for key in stage_keys:
        if key not in stages:
            raise click.BadParameter(
                f"no stage {key!r} with both forms{suggest(key, stages)}", param_hint="--stage"
            )
    plugins = {registry.owner("stages", k) for k in stages}
    for name in plugin_names:
        if name not in plugins:
            raise click.BadParameter(
                f"no plugin {name!r} with two-form stages{suggest(name, plugins)}",
                param_hint="--plugin",
            )
    checks = [
        verify_stage(stage, registry.owner("stages", key), seed)
        for key, stage in sorted(stages.items())
        if (not stage_keys or key in stage_keys)
        and (not plugin_names or registry.owner("stages", key) in plugin_names)
    ]
    models = [] if stage_keys or plugin_names else verify_data_models(registry=registry, seed=seed)
    if as_json:
        click.echo(json.dumps([check_summary(c) for c in [*checks, *models]], indent=2))
    else:
        for line in report_lines(checks, models):
            click.echo(line)
    if any(not c.passed for c in [*checks, *models]):
        sys.exit(1)


@main.command()
@click.argument("raw", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--pipelines",
    "selection",
    multiple=True,
    default=("all",),
    show_default=True,
    help="'all', names such as 'bi,s,me,ma,u,ga', or pipeline TOML files "
    "(separated by ',' or ';', or repeat the option).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--shape", help="HEIGHTxWIDTH of a headerless .raw file, e.g. 1080x1920.")
@click.option("--bits", type=click.IntRange(1, 16), help="Bit depth of the stored samples.")
@click.option(
    "--cfa",
    type=click.Choice(CFA_PATTERNS, case_sensitive=False),
    help="CFA pattern (overrides file metadata and profile).",
)
@click.option("--camera", "profile", help="Named camera profile (see 'driftlab plugins').")
@click.option("--white-balance", help="R,G,B gains, e.g. 1.816,1,1.25.")
@click.option("--black-level", help="One value or four (per CFA site), fraction of white level.")
@click.option("--color-matrix", help="Nine numbers, row-major 3x3.")
@click.option(
    "--form",
    type=click.Choice(["fast", "static", "differentiable"]),
    default="fast",
    show_default=True,
    help="Render with the fast batched path, the numpy reference or the torch form.",
)
@click.option("--device", default="auto", show_default=True, help="Torch device: auto, cpu, cuda.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=min(4, os.cpu_count() or 1),
    show_default=True,
    help="Processes for static rendering.",
)
def render(
    raw: Path,
    selection: tuple[str, ...],
    out_dir: Path,
    shape: str | None,
    bits: int | None,
    cfa: str | None,
    profile: str | None,
    white_balance: str | None,
    black_level: str | None,
    color_matrix: str | None,
    form: str,
    device: str,
    workers: int,
) -> None:
    """Render one RAW file through pipelines; write NAME.png per pipeline and a contact sheet.

    RAW may be .npy, a 16-bit TIFF, a DNG or other camera raw file (metadata
    supplies black level, white balance and colour matrix), or a headerless
    .raw file with --shape, --bits and --cfa.
    """
    from driftlab.io.raw import RawReadError, read_raw
    from driftlab.pipeline import SpecError, expand_pipeline_names
    from driftlab.registry import RegistryError
    from driftlab.render import camera_for_frame, render_frame

    geometry = _parse_shape(shape)
    try:
        frame = read_raw(raw, shape=geometry, bits=bits)
        camera_profile = _registry().camera(profile) if profile else None
        camera = camera_for_frame(
            frame,
            camera_profile,
            cfa=cfa,
            bits=bits,
            white_balance=_parse_floats(white_balance, "--white-balance"),
            black_level=_parse_floats(black_level, "--black-level"),
            color_matrix=_parse_floats(color_matrix, "--color-matrix"),
        )
        specs = expand_pipeline_names(selection)
        result = render_frame(
            frame.raw,
            camera,
            specs,
            out_dir,
            form=form,
            device=_resolve_device(device),
            workers=workers,
            title=f"{raw.name} ({camera.cfa}, {camera.bit_depth}-bit)",
        )
    except (RawReadError, SpecError, RegistryError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    for name, path in result.views.items():
        click.echo(f"{name}: {path}")
    click.echo(f"contact sheet: {result.contact_sheet}")


def _resolve_device(device: str) -> str:
    from driftlab.models.device import resolve_device

    try:
        return str(resolve_device(device))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None


def _print_synthesis_headline(result) -> None:
    s = result.summary

    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    click.echo(f"run directory: {result.run_dir}")
    click.echo(f"report: {result.report}")
    click.echo(
        f"cells: {result.cells_reused} reused, {result.cells_computed} computed "
        f"({s['folds']} folds x {len(s['train_pipelines'])} train pipelines)"
    )
    click.echo(f"mean {s['metric']} on the training pipeline (diagonal): {fmt(s['mean_diagonal'])}")
    click.echo(f"mean drop under ISP drift:    {fmt(s['mean_isp_drop'])}")
    click.echo(f"mean drop under corruptions:  {fmt(s.get('mean_corruption_drop'))}")
    click.echo(f"ratio corruptions / ISP drift: {fmt(s.get('drop_ratio_corruption_over_isp'))}")
    click.echo(f"top-3 train pipelines under ISP drift:   {', '.join(s['ranking_isp'][:3])}")
    if s.get("top3_corruption") is not None:
        click.echo(f"top-3 train pipelines under corruptions: {', '.join(s['top3_corruption'])}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Run directory."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set training.epochs=2 (repeatable).",
)
@click.option("--device", help="Torch device (auto, cpu, cuda, cuda:N); overrides the config.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def synthesize(
    config: Path, out_dir: Path | None, overrides: tuple[str, ...], device: str | None, quiet: bool
) -> None:
    """Train under each ISP pipeline, test under all others and under corruptions.

    Writes results.csv, summary.json, figures and report.md/html to the run
    directory. Rerunning the same command resumes an interrupted run.
    """
    import logging

    from driftlab.configtools import ConfigError
    from driftlab.runs import RunDirError
    from driftlab.synthesis import run_synthesis

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    extra = list(overrides) + ([f"training.device={device}"] if device else [])
    if quiet:
        extra.append("run.progress=false")
    try:
        result = run_synthesis(config, out=out_dir, overrides=extra)
    except (ConfigError, RunDirError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt as exc:
        click.echo(f"interrupted: {exc or 'rerun the same command to resume'}", err=True)
        sys.exit(130)
    _print_synthesis_headline(result)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def report(run_dir: Path) -> None:
    """Re-render the figures and report of a synthesis run from its tables."""
    from driftlab.configtools import ConfigError
    from driftlab.synthesis import rebuild_report

    try:
        written = rebuild_report(run_dir)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for name, path in written.items():
        click.echo(f"{name}: {path}")


def _attach_subgroups() -> None:
    from driftlab.cli_data import data
    from driftlab.cli_optimize import optimize

    main.add_command(data)
    main.add_command(optimize)

    from driftlab.cli_forensics import forensics, signature

    main.add_command(forensics)
    main.add_command(signature)


_attach_subgroups()

if __name__ == "__main__":  # pragma: no cover
    main()
