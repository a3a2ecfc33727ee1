"""``driftlab data list`` and ``driftlab data check`` (the click group, invoked directly)."""

from __future__ import annotations

import json
import shutil

import attrs
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from driftlab.cli.data import data, parse_option
from tests.fixtures_zenodo import make_drone, make_microscopy
from tests.helpers import builtin_registry


def run(*args):
    return CliRunner().invoke(data, [str(a) for a in args], catch_exceptions=False)


def test_list_text_and_json():
    result = run("list")
    assert result.exit_code == 0
    out = result.output
    assert "raw-microscopy  [classification]" in out and "raw-drone  [segmentation]" in out
    assert "classes (9): BAS, EOS, KSC, LYA, LYT, MON, NGB, NGS, UNC" in out
    assert "size: 940 items of 256x256" in out
    assert "intensity levels: 1, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01" in out
    rows = {row["name"]: row for row in json.loads(run("list", "--json").output)}
    assert rows["raw-drone"]["classes"] == ["background", "car"]
    assert rows["raw-drone"]["camera"] == {"name": "raw-drone", "cfa": "RGGB", "bit_depth": 16}
    assert rows["raw-microscopy"]["intensities"] == [1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01]
    assert "labels_csv" in rows["raw-folder"]["options"]
    assert rows["raw-microscopy"]["plugin"] == "driftlab.builtin.datasets"


def test_check_passes_on_a_complete_microscopy_copy(microscopy_copy):
    result = run("check", "raw-microscopy", "--data-root", microscopy_copy.root)
    assert result.exit_code == 0, result.output
    assert result.output.count("15 items in 15 groups; BAS 5, LYT 5, NGS 5") == 7
    assert "intensity 0.01:" in result.output
    assert "note: class MON: 2 labelled image(s)" in result.output
    assert result.output.rstrip().endswith("OK: no problems found")


def test_check_fails_naming_the_truncated_tiff(microscopy_copy, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(microscopy_copy.root, root)
    stem = sorted(microscopy_copy.kept)[6]
    victim = root / "microscopy" / "images" / "raw_scale025" / f"{stem}.tiff"
    victim.write_bytes(victim.read_bytes()[:5000])
    result = run("check", "raw-microscopy", "--data-root", root)
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and str(victim) in problems[0] and "truncated" in problems[0]
    assert "intensity 0.25: 14 items" in result.output
    assert "FAILED: 1 problem(s)" in result.output


def test_check_reports_label_problems_once_with_line_numbers(tmp_path):
    fx = make_microscopy(tmp_path, shape=(8, 8), levels=(1.0, 0.5))
    with fx.label_file.open("a") as f:
        f.write("broken line with four\n")
    result = run(
        "check",
        "raw-microscopy",
        "--data-root",
        tmp_path,
        "--intensity",
        1,
        "-o",
        "image_shape=[8, 8]",
    )
    assert result.exit_code == 1
    line = len(fx.labels) + 1
    assert result.output.count(f"problem: {fx.label_file}:{line}: malformed label line") == 1
    # levels missing from this copy are reported by the layout checker
    assert "raw_scale075: not found" in result.output


def test_check_drone(drone_copy, tmp_path):
    assert run("check", "raw-drone", "--data-root", drone_copy.root).exit_code == 0
    root = tmp_path / "copy"
    shutil.copytree(drone_copy.root, root)
    stem = sorted(drone_copy.tiles)[3]
    (root / "drone" / "masks_tiles_256" / f"{stem}.png").unlink()
    result = run("check", "raw-drone", "--data-root", root, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    level = report["levels"][0]
    assert {k: level[k] for k in ("intensity", "items", "groups", "merged", "classes")} == {
        "intensity": 1.0, "items": 5, "groups": 3, "merged": 0, "classes": {}
    }  # fmt: skip
    assert len(report["problems"]) == 7  # the tile has no mask at each of the 7 levels
    assert all(f"{stem}.tif: no mask" in p for p in report["problems"])


def test_check_missing_copy_says_where_to_get_it(tmp_path):
    result = run("check", "raw-microscopy", "--data-root", tmp_path)
    assert result.exit_code == 1
    assert "10.5281/zenodo.5235536" in result.output
    assert result.output.count("problem:") == 1
    assert result.output.count("cannot open") == 7


def test_check_usage_errors(microscopy_copy):
    result = run("check", "raw-microscopy")
    assert result.exit_code == 2 and "needs --data-root" in result.output
    result = run("check", "raw-microscopi", "--data-root", microscopy_copy.root)
    assert result.exit_code == 2 and "did you mean 'raw-microscopy'" in result.output
    result = run("check", "raw-microscopy", "--data-root", microscopy_copy.root, "--intensity", 0.3)
    assert result.exit_code == 2 and "no captured level 0.3" in result.output
    result = run("check", "raw-microscopy", "--data-root", microscopy_copy.root, "-o", "shape=1")
    assert result.exit_code == 2 and "no option 'shape'" in result.output


def test_check_raw_folder_with_options(tmp_path):
    for i in range(3):
        tifffile.imwrite(tmp_path / f"r{i}.tif", np.full((4, 4), 100 * i, np.uint16))
    (tmp_path / "labels.csv").write_text("file,label\nr0.tif,a\nr1.tif,b\nr2.tif,a\n")
    args = ("check", "raw-folder", "--data-root", tmp_path, "-o", "labels_csv=labels.csv")
    result = run(*args, "-o", "shape=[4, 4]")
    assert result.exit_code == 0, result.output
    assert "3 items in 3 groups; a 2, b 1" in result.output
    result = run(*args, "-o", "shape=[8, 8]")
    assert result.exit_code == 1 and result.output.count("expected 8x8") == 3


def test_parse_option_values():
    assert parse_option("labels_csv=labels.csv") == ("labels_csv", "labels.csv")
    assert parse_option("bits=12") == ("bits", 12)
    assert parse_option("shape=[4, 4]") == ("shape", [4, 4])
    assert parse_option("skip_bad=true") == ("skip_bad", True)
    with pytest.raises(Exception, match="expected KEY=VALUE"):
        parse_option("novalue")


def test_check_reads_every_item_of_datasets_without_skip_bad(tmp_path):
    """A dataset whose opener has no skip_bad option is still read item by item."""
    from driftlab.datasets.check import check_dataset
    from driftlab.datasets.drone import DRONE

    fx = make_drone(tmp_path, frames=2, tiles_per_frame=1, shape=(8, 8), levels=(1.0,))
    stem = sorted(fx.tiles)[0]
    fx.tile(stem).write_bytes(b"junk")
    plain = attrs.evolve(DRONE, options={}, checker=None)
    report = check_dataset(plain, tmp_path, [1.0], {"image_shape": [8, 8]}, builtin_registry())
    assert report["levels"][0]["items"] == 2
    assert len(report["problems"]) == 1 and f"{stem}.tif: corrupt" in report["problems"][0]
