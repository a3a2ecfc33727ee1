"""Raw datasets: declarations, loaders and splits."""

from driftlab.datasets.base import TASKS, DatasetError, DatasetSpec, RawDataset, Sample

__all__ = ["TASKS", "DatasetError", "DatasetSpec", "RawDataset", "Sample"]
