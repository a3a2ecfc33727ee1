"""Training and evaluation of task models on rendered views (plain PyTorch)."""

from driftlab.train.engine import FitResult, TrainConfig, evaluate, fit, predict
from driftlab.train.losses import dice_bce_loss, task_loss
from driftlab.train.metrics import accuracy, iou, task_metric_name
from driftlab.train.normalize import Normalized, channel_stats

__all__ = [
    "FitResult",
    "Normalized",
    "TrainConfig",
    "accuracy",
    "channel_stats",
    "dice_bce_loss",
    "evaluate",
    "fit",
    "iou",
    "predict",
    "task_loss",
    "task_metric_name",
]
