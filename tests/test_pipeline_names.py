"""Pipeline names on the command line and on disk (issues 13.2, 13.6, 13.11)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from click.testing import CliRunner

from driftlab.camera import CameraParams
from driftlab.cli import main
from driftlab.pipeline import (
    PAPER_DATA_MODELS,
    PipelineSpec,
    SpecError,
    StageConfig,
    build_static,
    expand_pipeline_names,
    parse_pipeline_selection,
    reference_pipeline,
)
from driftlab.render import pipeline_file_name, render_frame

CAMERA = CameraParams(name="t")


def test_pipeline_file_names_are_injective_for_names_that_sanitise_alike():
    names = ["g a", "g_a", "g/a", "g:a", "G_a", "g_A", "Foo", "foo", "..", ".hidden", "a~b", "é"]
    files = [pipeline_file_name(n) for n in names]
    assert len(set(files)) == len(files)
    # also on a case-insensitive file system
    assert len({f.lower() for f in files}) == len(files)
    for f in files:
        assert re.fullmatch(r"[A-Za-z0-9,._+~-]+", f) and not f.startswith(".")


def test_plain_pipeline_names_stay_readable():
    for name in PAPER_DATA_MODELS:
        assert pipeline_file_name(name) == name
    assert pipeline_file_name("my-isp_v2.1") == "my-isp_v2.1"
    assert pipeline_file_name("g a").startswith("g_a~")
    assert len(pipeline_file_name("x" * 500)) <= 111


def test_render_writes_one_file_per_pipeline_even_when_names_sanitise_alike(tmp_path):
    base = reference_pipeline()
    specs = [
        PipelineSpec("g a", base.stages),
        PipelineSpec("g_a", base.replace_stage("gamma", "power", gamma=2.6).stages),
    ]
    raw = np.random.default_rng(0).uniform(0, 1, size=(8, 8))
    result = render_frame(raw, CAMERA, specs, tmp_path)
    assert len({p.name for p in result.views.values()}) == 2
    assert all(p.is_file() for p in result.views.values())


def test_selection_splits_names_that_contain_commas():
    assert parse_pipeline_selection("bi,s,me,ma,u,ga") == ["bi,s,me", "ma,u,ga"]
    assert parse_pipeline_selection("bi,s,me;ma,u,ga") == ["bi,s,me", "ma,u,ga"]
    assert parse_pipeline_selection(["bi,s,me", "me,u,ga"]) == ["bi,s,me", "me,u,ga"]
    assert parse_pipeline_selection("all") == list(PAPER_DATA_MODELS)
    assert parse_pipeline_selection("x.toml,bi,s,me") == ["x.toml", "bi,s,me"]
    # names of another set, e.g. a plugin's, with commas of their own
    assert parse_pipeline_selection("a,b;c", known=["a,b", "c"]) == ["a,b", "c"]


def test_an_unknown_name_is_reported_whole_with_a_suggestion():
    with pytest.raises(SpecError, match=r"unknown pipeline 'bi,x,ga' \(did you mean 'bi,"):
        parse_pipeline_selection("bi,x,ga")
    with pytest.raises(SpecError, match=r"unknown pipeline 'ma,u,gx' \(did you mean 'ma,u,ga'"):
        expand_pipeline_names("bi,s,me,ma,u,gx")
    with pytest.raises(SpecError, match="no pipeline selected"):
        parse_pipeline_selection(" ; ")


def _raw_file(tmp_path):
    values = np.random.default_rng(0).integers(0, 1024, size=(16, 16), dtype=np.uint16)
    path = tmp_path / "frame.raw"
    values.astype("<u2").tofile(path)
    return path


def test_render_pipelines_option_parses_names_with_commas_and_suggests(tmp_path):
    raw = _raw_file(tmp_path)
    common = ["render", str(raw), "--shape", "16x16", "--bits", "10", "--cfa", "RGGB"]
    bad = CliRunner().invoke(
        main, [*common, "--pipelines", "bi,x,ga", "--out", str(tmp_path / "a")]
    )
    assert bad.exit_code != 0
    assert "unknown pipeline 'bi,x,ga'" in bad.output and "did you mean" in bad.output
    assert "unknown pipeline 'bi'" not in bad.output
    for option in (
        ["--pipelines", "bi,s,me;ma,u,ga"],
        ["--pipelines", "bi,s,me", "--pipelines", "ma,u,ga"],
    ):
        out = tmp_path / "b"
        result = CliRunner().invoke(main, [*common, *option, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.glob("*.png")) == [
            "bi,s,me.png",
            "contact_sheet.png",
            "ma,u,ga.png",
        ]


def test_a_huge_gaussian_sigma_is_refused_before_allocating(tmp_path):
    # sigma = 1e9 with a widened domain used to allocate tens of GiB
    path = tmp_path / "huge.toml"
    path.write_text(
        'name = "huge"\n'
        '[[stages]]\nslot = "demosaic"\nvariant = "bilinear"\n'
        '[[stages]]\nslot = "denoise"\nvariant = "gaussian"\n'
        "params = { sigma = 1e9 }\ndomains = { sigma = [0.1, 1e10] }\n"
        '[[stages]]\nslot = "gamma"\n'
    )
    spec = expand_pipeline_names([str(path)])[0]
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"denoise.gaussian: sigma = 1e\+09 px .* at most 256 px"):
        build_static(spec, CAMERA)
    assert time.perf_counter() - start < 5.0
    for slot, variant, param in (
        ("sharpen", "unsharp_masking", "radius"),
        ("sharpen", "column_unsharp_masking", "radius"),
    ):
        spec = PipelineSpec(
            "p",
            [
                StageConfig("demosaic", "bilinear"),
                StageConfig(slot, variant, params={param: 1e6}, domains={param: [0, 1e7]}),
            ],
        )
        with pytest.raises(SpecError, match=f"{param} = 1e\\+06 px"):
            build_static(spec, CAMERA)
    result = CliRunner().invoke(
        main,
        ["render", str(_raw_file(tmp_path)), "--shape", "16x16", "--bits", "10",
         "--pipelines", str(path), "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code != 0 and "sigma = 1e+09 px" in result.output
    assert not (tmp_path / "out").exists()
