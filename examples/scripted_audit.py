"""Script model selection and an audit with the Python API.

1. A drift synthesis on the embedded blood-smear data trains a small CNN
   under three ISP pipelines and tests every model on a fixed held-out set
   (a second draw of the generator) under all twelve pipelines and under
   corruptions; it prints which training pipelines generalise best.
2. The best model (first in the ISP-drift ranking) is then audited as an
   auditor would audit a deployed model: frozen, on the held-out set, under
   every ISP pipeline and corruption, with the input contract it was trained
   with (the synthesis model stores its own normalisation).

Run from the repository root::

    python examples/scripted_audit.py [OUT] [SECTION.KEY=VALUE ...]

``SECTION.KEY=VALUE`` overrides the synthesis config (e.g.
``training.epochs=1``); those of ``[dataset]``, ``[test]``, ``[corruptions]``
and ``[run]`` apply to the audit too.

Both runs use two worker processes; those are *spawned* and import this
script again, so everything that runs work sits under ``if __name__ ==
"__main__":`` (the usual rule for Python multiprocessing on every platform;
without it driftlab stops with an error naming the line).
"""

from __future__ import annotations

import sys
from pathlib import Path

from driftlab.audit import run_audit
from driftlab.synthesis import run_synthesis
from driftlab.synthesis.experiment import model_key
from driftlab.synthesis.summary import isp_matrix
from driftlab.tomlio import read_toml

HERE = Path(__file__).resolve().parent

SYNTHESIS = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 300, "size": 48}},
    "test": {"options": {"seed": 1, "n_items": 150}},
    "pipelines": {"train": ["bi,s,ga", "ma,s,me", "me,u,ga"], "test": "all"},
    "corruptions": {"names": ["identity", "gaussian_noise", "contrast"], "severities": [3]},
    "model": {"name": "small-cnn"},
    "training": {"epochs": 4, "lr": 3e-3, "folds": 2, "seed": 0},
    "run": {"workers": 2, "progress": False, "device": "auto"},
}
SHARED = ("dataset.", "test.", "corruptions.", "run.")


def main(out: Path, overrides: list[str]) -> None:
    result = run_synthesis(SYNTHESIS, out=out / "synthesis", overrides=overrides)
    summary = result.summary
    print(f"synthesis report: {result.report}")
    print(f"{summary['metric']} on the training pipeline: {summary['mean_diagonal']:.3f}")
    print(
        f"drop under ISP drift {summary['mean_isp_drop']:.3f}, "
        f"under corruptions {summary['mean_corruption_drop']:.3f}"
    )
    print("ranking under ISP drift:   ", ", ".join(summary["ranking_isp"]))
    print("ranking under corruptions: ", ", ".join(summary["ranking_corruption"]))
    mean, _ = isp_matrix(result.results)
    print("worst train -> test pairs:")
    for (train, test), value in mean.stack().sort_values().head(3).items():
        print(f"  {train} -> {test}: {value:.3f}")

    best = summary["ranking_isp"][0]
    used = read_toml(result.run_dir / "config.toml")  # the resolved config, overrides applied
    audit = run_audit(
        {
            "dataset": used["dataset"],
            "test": used.get("test", {}),
            "model": {
                "weights": str(result.run_dir / "models" / f"{model_key(best, 0)}.pt"),
                "name": used["model"]["name"],
                "options": used["model"].get("options", {}),
                "train_pipeline": best,
            },
            "pipelines": {"test": "all"},
            "corruptions": used["corruptions"],
            "run": {k: v for k, v in used["run"].items() if k != "out"},
        },
        out=out / "audit",
        overrides=[o for o in overrides if o.startswith(SHARED)],
    )
    facts = audit.summary["audit"]
    print(f"audit report: {audit.report}")
    print(
        f"audit of the {best} model (fold 0): {facts['reference_score']:.3f} on its own "
        f"pipeline; lowest {facts['worst_isp']['value']:.3f} under ISP drift "
        f"({facts['worst_isp']['pipeline']}), {facts['worst_corruption']['value']:.3f} under "
        f"{facts['worst_corruption']['corruption']}@{facts['worst_corruption']['severity']}"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    target = Path(args.pop(0)) if args and "=" not in args[0] else HERE.parent / "runs" / "scripted"
    main(target, args)
