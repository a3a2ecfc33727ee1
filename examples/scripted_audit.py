"""Script a drift-synthesis audit with the Python API.

Runs a small synthesis on the embedded blood-smear data, then prints which
training pipelines generalise best under ISP drift and under corruptions,
and the train/test pairs where the model loses most. Run from the
repository root: ``python examples/scripted_audit.py [OUT]``.

The run uses two worker processes; those are *spawned* and re-import this
script, so everything that runs work sits under ``if __name__ ==
"__main__":`` (the usual rule for Python multiprocessing on every platform).
"""

from __future__ import annotations

import sys
from pathlib import Path

from driftlab.synthesis import run_synthesis
from driftlab.synthesis.summary import isp_matrix

HERE = Path(__file__).resolve().parent

CONFIG = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 300}},
    "pipelines": {"train": ["bi,s,ga", "ma,s,me", "me,u,ga"], "test": "all"},
    "corruptions": {"names": ["identity", "gaussian_noise", "contrast"], "severities": [3]},
    "model": {"name": "small-cnn"},
    "training": {"epochs": 4, "lr": 3e-3, "folds": 2, "seed": 0},
    "run": {"workers": 2, "progress": False, "device": "auto"},
}


def main(out: Path) -> None:
    result = run_synthesis(CONFIG, out=out)
    summary = result.summary
    print(f"report: {result.report}")
    print(f"{summary['metric']} on the training pipeline: {summary['mean_diagonal']:.3f}")
    print(
        f"drop under ISP drift {summary['mean_isp_drop']:.3f}, "
        f"under corruptions {summary['mean_corruption_drop']:.3f}"
    )
    print("ranking under ISP drift:   ", ", ".join(summary["ranking_isp"]))
    print("ranking under corruptions: ", ", ".join(summary["ranking_corruption"]))
    mean, _ = isp_matrix(result.results)
    pairs = mean.stack().sort_values()
    print("worst train -> test pairs:")
    for (train, test), value in pairs.head(3).items():
        print(f"  {train} -> {test}: {value:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "runs" / "scripted-audit")
