"""Training and evaluation of task models (plain PyTorch): one loop for every experiment."""

from driftlab.train.engine import (
    FitResult,
    TrainConfig,
    TrainingDiverged,
    evaluate,
    fit,
    item_outcomes,
    metric_from_outcomes,
    predict,
)
from driftlab.train.losses import dice_bce_loss, task_loss
from driftlab.train.metrics import accuracy, iou, task_metric_name
from driftlab.train.normalize import Normalized, channel_stats

__all__ = [
    "FitResult",
    "Normalized",
    "TrainConfig",
    "TrainingDiverged",
    "accuracy",
    "channel_stats",
    "dice_bce_loss",
    "evaluate",
    "fit",
    "iou",
    "item_outcomes",
    "metric_from_outcomes",
    "predict",
    "task_loss",
    "task_metric_name",
]
