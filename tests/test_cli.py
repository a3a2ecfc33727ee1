"""The command line: listings, verify and render."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from driftlab.cli import main
from driftlab.pipeline import PAPER_DATA_MODELS
from tests.helpers import OPENISP_RAW, openisp_frame


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_everywhere():
    for command in ([], ["plugins"], ["stages"], ["pipelines"], ["verify"], ["render"]):
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output


def test_plugins_listing():
    result = run("plugins")
    assert result.exit_code == 0
    assert "driftlab.builtin.stages" in result.output
    data = json.loads(run("plugins", "--json").output)
    names = [p["name"] for p in data["plugins"]]
    assert "driftlab.builtin.cameras" in names


def test_stages_listing_shows_domains_and_units():
    result = run("stages")
    assert "gamma.power" in result.output
    assert "[1.6, 2.8] exponent" in result.output
    data = json.loads(run("stages", "--json").output)
    menon = next(d for d in data if d["key"] == "demosaic.menon2007")
    assert menon["forms"] == ["static", "differentiable"]
    poisson = next(d for d in data if d["key"] == "illumination.poisson")
    assert poisson["forms"] == ["static"]


def test_pipelines_listing_and_show():
    result = run("pipelines")
    for name in PAPER_DATA_MODELS:
        assert name in result.output
    shown = run("pipelines", "--show", "ma,u,ga")
    assert 'name = "ma,u,ga"' in shown.output
    assert 'variant = "unsharp_masking"' in shown.output
    data = json.loads(run("pipelines", "--json").output)
    assert len(data) == 12
    bad = run("pipelines", "--show", "ma,u,gx")
    assert bad.exit_code == 2  # an unknown name is a usage error
    assert "did you mean 'ma,u,ga'" in bad.output


def test_verify_passes_and_reports_table():
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert "demosaic.malvar2004" in result.output
    assert "0 failed" in result.output
    data = json.loads(run("verify", "--json").output)
    assert all(d["passed"] and d["max_abs_diff"] <= 1e-4 for d in data)


def _raw_file(tmp_path, shape=(32, 48), bits=10):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**bits, size=shape, dtype=np.uint16)
    path = tmp_path / "frame.raw"
    values.astype("<u2").tofile(path)
    return path, values


def test_render_headerless_raw(tmp_path):
    path, _ = _raw_file(tmp_path)
    out = tmp_path / "out"
    result = run(
        "render", path, "--shape", "32x48", "--bits", 10, "--cfa", "grbg",
        "--pipelines", "bi,s,me,ma,u,ga", "--out", out, "--white-balance", "2,1,1.5",
        "--workers", 1,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "bi,s,me.png",
        "contact_sheet.png",
        "ma,u,ga.png",
    ]
    assert Image.open(out / "bi,s,me.png").size == (48, 32)


def test_render_tiff_npy_and_differentiable_form(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65536, size=(16, 16), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "frame.tiff", values)
    np.save(tmp_path / "frame.npy", values.astype(np.float32) / 65535)
    for name in ("frame.tiff", "frame.npy"):
        out = tmp_path / name.replace(".", "_")
        result = run(
            "render", tmp_path / name, "--camera", "raw-drone", "--pipelines", "bi,s,ga",
            "--form", "differentiable", "--device", "cpu", "--out", out,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (out / "bi,s,ga.png").is_file()
    static = np.asarray(Image.open(tmp_path / "frame_tiff" / "bi,s,ga.png"), dtype=float)
    diff = np.asarray(Image.open(tmp_path / "frame_npy" / "bi,s,ga.png"), dtype=float)
    assert np.abs(static - diff).max() <= 1.0  # float32 rounding at most one 8-bit level


def _static_only_toml(tmp_path):
    path = tmp_path / "low_light.toml"
    path.write_text(
        'name = "low-light"\n[[stages]]\nslot = "black_level"\n'
        '[[stages]]\nslot = "illumination"\nvariant = "poisson"\nparams = { ratio = 0.5 }\n'
        '[[stages]]\nslot = "demosaic"\nvariant = "bilinear"\n[[stages]]\nslot = "gamma"\n'
    )
    return path


def test_render_errors_name_the_option(tmp_path):
    path, _ = _raw_file(tmp_path)
    out = tmp_path / "out"
    cases = [
        (["--shape", "32by48", "--bits", "10"], "expected HEIGHTxWIDTH"),
        (["--shape", "32x48", "--bits", "10", "--white-balance", "1,2"], "--white-balance: expected 3"),
        (["--shape", "32x48", "--bits", "10", "--white-balance", "a,b,c"], "comma-separated numbers"),
        (["--shape", "32x48", "--bits", "10", "--black-level", "0,0"], "--black-level: expected 1 or 4"),
        (["--shape", "32x48", "--bits", "10", "--color-matrix", "1,0,0"], "--color-matrix: expected 9"),
        (["--shape", "32x48", "--bits", "10", "--cfa", "RGBG"], "'RGBG' is not one of"),
        (["--shape", "32x48", "--bits", "10", "--camera", "openips"], "did you mean 'openisp'"),
        (["--shape", "32x48", "--bits", "10", "--pipelines", "bi,s,mx"], "unknown pipeline"),
        (["--shape", "32x40", "--bits", "10"], "expected 2560"),
        (["--shape", "32x48", "--bits", "9"], "exceeds the white level 511"),
        (["--shape", "32x48", "--bits", "10", "--form", "differentiable", "--pipelines", str(_static_only_toml(tmp_path))],
         "no differentiable form"),
        (["--shape", "32x48", "--bits", "10", "--white-balance", "20,1,1"], "outside its domain"),
    ]  # fmt: skip
    for extra, message in cases:
        result = CliRunner().invoke(main, ["render", str(path), "--out", str(out), *extra])
        assert result.exit_code != 0, extra
        assert message in result.output, (extra, result.output)
    assert not out.exists()  # nothing written before an error


@pytest.mark.realdata
def test_render_real_frame_one_pipeline(tmp_path):
    openisp_frame()
    out = tmp_path / "out"
    result = run(
        "render", OPENISP_RAW, "--shape", "1080x1920", "--bits", 10, "--cfa", "RGGB",
        "--pipelines", "bi,s,ga", "--out", out, "--white-balance", "1.816,1,1.25",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    view = np.asarray(Image.open(out / "bi,s,ga.png"), dtype=float) / 255
    assert view.shape == (1080, 1920, 3)
    # the chart's white background is neutral after the as-shot gains
    centre = view[500:580, 900:1020].reshape(-1, 3)
    bright = centre[centre.mean(axis=1) > 0.8]
    if len(bright):
        assert np.abs(bright.mean(axis=0) - bright.mean()).max() < 0.08


@pytest.mark.realdata
@pytest.mark.slow
def test_render_real_frame_all_twelve(tmp_path):
    openisp_frame()
    out = tmp_path / "out"
    result = run(
        "render", OPENISP_RAW, "--shape", "1080x1920", "--bits", 10, "--cfa", "RGGB",
        "--pipelines", "all", "--out", out, "--white-balance", "1.816,1,1.25",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.glob("*.png"))
    assert len(written) == 13 and "contact_sheet.png" in written


def test_verify_filters():
    result = run("verify", "--stage", "gamma.power", "--json")
    assert [d["stage"] for d in json.loads(result.output)] == ["gamma.power"]
    bad = CliRunner().invoke(main, ["verify", "--stage", "gamma.pwer"])
    assert bad.exit_code == 2 and "did you mean 'gamma.power'" in bad.output


def test_tables_wrap_to_columns_and_never_into_a_pipe(monkeypatch, capsys):
    from driftlab.cli.common import echo_table

    rows = [("black_level.subtract", "levels per element [0.06153, 0.06347] fraction of white")]
    echo_table(rows, ("stage", "parameters"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2].startswith("black_level.subtract")  # a pipe: one row
    monkeypatch.setenv("COLUMNS", "40")
    echo_table(rows, ("stage", "parameters"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 3 and all(len(line) <= 40 for line in lines)
