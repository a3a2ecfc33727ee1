"""The cosine learning-rate schedule of the training loop anneals to 0; constant keeps the rate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from driftlab.train import TrainConfig, fit


def _fit(schedule: str) -> list[float]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    x = np.random.default_rng(0).random((12, 3, 4, 4)).astype(np.float32)
    y = np.arange(12) % 2
    group = {"params": list(model.parameters()), "lr": 0.01}
    rates: list[float] = []
    fit(
        model, x, y, "classification",
        TrainConfig(epochs=3, batch_size=4, lr=0.01, schedule=schedule),
        param_groups=[group], after_step=lambda: rates.append(float(group["lr"])),
    )  # fmt: skip
    return rates


def test_cosine_schedule_anneals_the_learning_rate_to_zero_over_all_steps():
    rates = _fit("cosine")
    assert len(rates) == 9
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in itertools.pairwise(rates))
    # after step s of S the rate is lr * (1 + cos(pi * s / S)) / 2
    assert rates[3] == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 4 / 9)))


def test_constant_schedule_keeps_the_rate_and_unknown_schedules_are_refused():
    assert set(_fit("constant")) == {0.01}
    with pytest.raises(ValueError, match=r"training\.schedule"):
        TrainConfig(schedule="step")
