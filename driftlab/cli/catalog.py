"""Catalogue commands: ``plugins``, ``stages``, ``pipelines``, ``verify``, and ``render``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from driftlab.cfa import CFA_PATTERNS
from driftlab.cli.common import echo_table, fail, get_registry_for

__all__ = ["pipelines", "plugins", "render", "stages", "verify"]


def _registry():
    return get_registry_for(click.get_current_context())


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


@click.command()
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
            "conflicts": registry.conflicts(),
        }
        click.echo(json.dumps(data, indent=2))
    else:
        rows = []
        for p in registry.plugins:
            provides = "; ".join(f"{kind}: {', '.join(keys)}" for kind, keys in p.provides.items())
            rows.append((p.name, p.distribution, p.version, provides or "-"))
        echo_table(rows, ("plugin", "distribution", "version", "provides"))
        for e in registry.errors:
            click.echo(f"ERROR {e.plugin} ({e.distribution}): {e.message}")
        for kind, keys in registry.conflicts().items():
            for key, who in keys.items():
                click.echo(
                    f"CONFLICT {kind} {key!r}: declared by {', '.join(map(repr, who))}; "
                    "withdrawn, every use of it fails naming them"
                )
    if strict and registry.errors:
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--domains",
    "domain_mode",
    type=click.Choice(["camera", "generic"]),
    default="camera",
    show_default=True,
    help="Camera-calibrated domains (needs --camera) or the generic declared ones.",
)
@click.option(
    "--camera", "camera_name", metavar="NAME", help="Camera profile for --domains camera."
)
@click.option(
    "--intensity",
    type=float,
    default=1.0,
    show_default=True,
    help="Light level for --domains camera.",
)
def stages(as_json: bool, domain_mode: str, camera_name: str | None, intensity: float) -> None:
    """List stage variants with their forms and parameter domains.

    With --camera NAME the domains are relative to that camera's calibration
    and the light level (--domains camera, the default); without it, or with
    --domains generic, the stages' declared domains are shown."""
    from driftlab.domains import stage_domains
    from driftlab.registry import RegistryError

    registry = _registry()
    items = registry.items("stages")
    bounds = {}
    if camera_name is not None:
        try:
            camera = registry.camera(camera_name)
            bounds = stage_domains(items.values(), camera, intensity, domain_mode)
        except (RegistryError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
    elif domain_mode == "camera" and not as_json:
        click.echo("(generic domains; give --camera NAME for camera-calibrated ones)")

    def domain_text(s, p, unit: bool = True) -> str:
        b = bounds.get(f"{s.key}.{p.name}")
        if b is not None:
            return b.describe()
        return p.domain.describe(p.unit) if unit else p.domain.describe()

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
                        "domain": domain_text(s, p, unit=False),
                        "domain_source": (
                            bounds[f"{s.key}.{p.name}"].source
                            if f"{s.key}.{p.name}" in bounds
                            else "generic"
                        ),
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
        params = "; ".join(f"{p.name} {domain_text(s, p)}" for p in s.params) or "-"
        rows.append((key, "+".join(s.forms), registry.owner("stages", key), params))
    echo_table(rows, ("stage", "forms", "plugin", "parameters (domain, unit)"))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--show", "show", metavar="NAME", help="Print one pipeline's spec as TOML.")
def pipelines(as_json: bool, show: str | None) -> None:
    """List the named pipelines (the paper's twelve and those plugins ship) and their stages."""
    from driftlab.pipeline import SpecError, expand_pipeline_names

    registry = _registry()
    named = registry.items("pipelines")
    if show is not None:
        try:
            (spec,) = expand_pipeline_names([show], named)
        except (SpecError, ValueError) as exc:
            raise fail(exc) from None
        if as_json:
            click.echo(json.dumps(spec.to_dict(), indent=2))
        else:
            import tomli_w

            click.echo(tomli_w.dumps(spec.to_dict()), nl=False)
        return
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in named.values()], indent=2))
        return
    rows = [
        (
            name,
            registry.owner("pipelines", name),
            " -> ".join(f"{c.slot}.{c.variant}" if c.variant else c.slot for c in s.stages),
        )
        for name, s in named.items()
    ]
    echo_table(rows, ("name", "plugin", "stages"))


@click.command()
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


@click.command()
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
        specs = expand_pipeline_names(selection, _registry().items("pipelines"))
        result = render_frame(
            frame.raw,
            camera,
            specs,
            out_dir,
            form=form,
            device=_resolve_device(device),
            workers=workers,
            title=f"{raw.name} ({camera.cfa}, {camera.bit_depth}-bit)",
            registry=_registry(),
        )
    except (RawReadError, SpecError, RegistryError, ValueError, FileNotFoundError) as exc:
        raise fail(exc) from None
    for name, path in result.views.items():
        click.echo(f"{name}: {path}")
    click.echo(f"contact sheet: {result.contact_sheet}")


def _resolve_device(device: str) -> str:
    from driftlab.models.device import resolve_device

    try:
        return str(resolve_device(device))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
