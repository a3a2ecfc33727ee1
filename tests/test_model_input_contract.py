"""``InputContract``: validated config, and views turned into model input with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.configtools import ConfigError
from driftlab.models import SMALL_CNN, InputContract, InputContractError, LoadedModel


def _constant(value: float, shape=(2, 3, 8, 8)) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def test_default_contract_passes_views_through_exactly():
    views = np.random.default_rng(0).random((3, 3, 10, 12), dtype=np.float32)
    out = InputContract().apply(views)
    assert out.dtype == torch.float32 and torch.equal(out, torch.from_numpy(views))
    assert InputContract().output_size(10, 12) == (10, 12)


def test_value_range_and_normalisation_known_answers():
    contract = InputContract(value_range=(0, 255), mean=(127.5, 100.0, 0.0), std=(2.0, 27.5, 255.0))
    out = contract.apply(_constant(0.5))
    # 0.5 -> 127.5 -> ((127.5 - 127.5) / 2, (127.5 - 100) / 27.5, 127.5 / 255)
    assert torch.equal(out[:, 0], torch.zeros(2, 8, 8))
    assert torch.equal(out[:, 1], torch.ones(2, 8, 8))
    assert torch.equal(out[:, 2], torch.full((2, 8, 8), 0.5))
    shifted = InputContract(value_range=(-1, 1)).apply(_constant(0.25))
    assert torch.equal(shifted, torch.full((2, 3, 8, 8), -0.5))


def test_wider_views_are_centre_cropped_without_resampling():
    views = np.random.default_rng(1).random((2, 3, 8, 16), dtype=np.float32)
    out = InputContract(size=(8, 8)).apply(views)
    assert torch.equal(out, torch.from_numpy(views[..., 4:12]))
    odd = InputContract(size=(5, 8)).apply(views[..., :8, :8])  # (8, 8) -> scale 1, crop rows 1..6
    assert torch.equal(odd, torch.from_numpy(views[:, :, 1:6, :8]))


def test_shrinking_is_antialiased_bilinear():
    ramp = np.broadcast_to(np.arange(8, dtype=np.float32) / 8, (1, 3, 8, 8)).copy()
    out = InputContract(size=4).apply(ramp)
    assert out.shape == (1, 3, 4, 4)
    # inside, the triangle filter (weights 1/8, 3/8, 3/8, 1/8) keeps a linear ramp linear:
    # output column k is centred on input column 2k + 0.5
    for k in (1, 2):
        torch.testing.assert_close(out[..., k], torch.full((1, 3, 4), (2 * k + 0.5) / 8))
    assert torch.equal(out[:, :, 0], out[:, :, 3])  # constant down each column
    constant = InputContract(size=(3, 5)).apply(_constant(0.3, (1, 3, 9, 15)))
    torch.testing.assert_close(constant, torch.full((1, 3, 3, 5), 0.3))


def test_enlarging_covers_the_target_then_crops_the_centre():
    views = np.zeros((1, 3, 4, 8), dtype=np.float32)
    views[..., 4:] = 1.0  # left half 0, right half 1
    out = InputContract(size=(8, 8)).apply(views)
    # scale max(8/4, 8/8) = 2 -> (8, 16); bilinear (align_corners=False) puts output column x
    # at input column (x + 0.5) / 2 - 0.5; columns 4..11 are kept
    expected = torch.tensor([0, 0, 0, 0.25, 0.75, 1, 1, 1]).expand(1, 3, 8, 8)
    torch.testing.assert_close(out, expected)


def test_masks_get_the_same_geometry_with_nearest_neighbour():
    masks = np.broadcast_to(np.arange(8, dtype=np.uint8), (2, 4, 8)).copy()
    out = InputContract(size=(8, 8)).apply_masks(masks)
    assert out.dtype == np.uint8 and out.shape == (2, 8, 8)
    np.testing.assert_array_equal(out[0, 0], [2, 2, 3, 3, 4, 4, 5, 5])
    np.testing.assert_array_equal(out[:, 0], out[:, 7])
    same = InputContract(size=(4, 8)).apply_masks(masks)
    np.testing.assert_array_equal(same, masks)
    cropped = InputContract(size=(4, 4)).apply_masks(masks)
    np.testing.assert_array_equal(cropped[0, 0], [2, 3, 4, 5])


def test_from_dict_reads_a_config_table_and_round_trips():
    table = {
        "train_pipeline": "bi,s,ga",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "size": [224, 256],
        "value_range": [0, 1],
    }
    contract = InputContract.from_dict(table)
    assert contract.train_pipeline == "bi,s,ga" and contract.size == (224, 256)
    assert contract.mean == (0.485, 0.456, 0.406) and contract.value_range == (0.0, 1.0)
    assert InputContract.from_dict(contract.to_dict()) == contract
    assert InputContract.from_dict({"size": 64}).size == (64, 64)
    assert InputContract.from_dict({}) == InputContract()
    assert set(InputContract.KEYS) == set(table)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (
            {"meen": [0.5]},
            r"\[model\]: unknown input-contract key 'meen' \(did you mean 'mean'\?\)",
        ),
        ({"mean": [0.5, 0.5, 0.5]}, r"\[model\] mean is set but std is not: give both or neither"),
        ({"std": [0.5]}, r"\[model\] std is set but mean is not"),
        ({"mean": [0.5, 0.5], "std": [1, 1, 1]}, r"\[model\] mean has 2 values but std has 3"),
        ({"mean": [0.5], "std": [0]}, r"\[model\] std must be > 0"),
        ({"mean": "imagenet", "std": [1]}, r"\[model\] mean: expected a list of numbers"),
        (
            {"mean": [0.5, "x"], "std": [1, 1]},
            r"\[model\] mean must be a non-empty list of finite numbers",
        ),
        (
            {"mean": [float("nan")], "std": [1]},
            r"\[model\] mean must be a non-empty list of finite",
        ),
        (
            {"size": [0, 64]},
            r"\[model\] size must be \[H, W\] \(or one integer\) with sides 1\.\.8192",
        ),
        ({"size": [64]}, r"\[model\] size must be \[H, W\]"),
        ({"size": [100000, 64]}, r"sides 1\.\.8192"),
        ({"size": 64.0}, r"\[model\] size: expected \[H, W\] or one integer"),
        ({"size": [64.0, 64]}, r"\[model\] size must be \[H, W\]"),
        (
            {"value_range": [255, 0]},
            r"\[model\] value_range must be \[lo, hi\] with finite lo < hi",
        ),
        ({"value_range": 255}, r"\[model\] value_range: expected \[lo, hi\]"),
        ({"train_pipeline": ""}, r"\[model\] train_pipeline must be a pipeline name"),
        ({"train_pipeline": 3}, r"\[model\] train_pipeline must be a pipeline name"),
    ],
)
def test_from_dict_errors_name_the_key(table, match):
    with pytest.raises(InputContractError, match=match):
        InputContract.from_dict(table)


def test_contract_errors_are_config_errors():
    assert issubclass(InputContractError, ConfigError)
    with pytest.raises(InputContractError, match=r"\[audit\]: expected a table"):
        InputContract.from_dict([1], where="[audit]")


@pytest.mark.parametrize(
    ("views", "match"),
    [
        (
            np.zeros((3, 8, 8), np.float32),
            r"views must be a numpy array \(N, C, H, W\), got \(3, 8, 8\)",
        ),
        (
            np.zeros((1, 4, 8, 8), np.float32),
            "views have 4 channels but the contract's mean/std have 3",
        ),
        (np.zeros((1, 3, 8, 8), np.uint8), "views must be float in"),
        (np.full((1, 3, 8, 8), np.nan, np.float32), "NaN or infinite"),
    ],
)
def test_apply_refuses_bad_views(views, match):
    contract = InputContract(mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(InputContractError, match=match):
        contract.apply(views)


def test_apply_masks_refuses_non_integer_masks():
    with pytest.raises(InputContractError, match="masks must hold integer classes"):
        InputContract(size=4).apply_masks(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(InputContractError, match=r"masks must be a numpy array \(N, H, W\)"):
        InputContract(size=4).apply_masks(np.zeros((8, 8), np.int64))


def test_contract_and_stored_normalisation_cannot_both_apply():
    stored = LoadedModel(
        SMALL_CNN.build(3), "state_dict", normalization=((0.5,) * 3, (0.2,) * 3), source=None
    )
    InputContract().check_model(stored)
    InputContract(mean=(0.5,) * 3, std=(0.2,) * 3).check_model(
        LoadedModel(SMALL_CNN.build(3), "state_dict")
    )
    with pytest.raises(
        InputContractError, match=r"store their normalisation .* remove \[model\] mean and std"
    ):
        InputContract(mean=(0.5,) * 3, std=(0.2,) * 3).check_model(stored)


def test_empty_batch_keeps_its_shape():
    out = InputContract(size=(4, 4)).apply(np.zeros((0, 3, 8, 8), np.float32))
    assert out.shape == (0, 3, 4, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_apply_on_cuda_matches_the_cpu():
    views = np.random.default_rng(2).random((2, 3, 20, 30), dtype=np.float32)
    contract = InputContract(size=(16, 16), value_range=(0, 255), mean=(1, 2, 3), std=(4, 5, 6))
    got = contract.apply(views, device="cuda")
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), contract.apply(views), rtol=1e-5, atol=1e-4)
