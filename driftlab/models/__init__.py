"""Task models (``Phi_task``): declarations, built-in architectures and loading.

Declarations (:class:`TaskModelSpec`) come from plugins through the
``driftlab_task_models`` hook; the built-in plugin
:mod:`driftlab.builtin.models` registers :data:`BUILTIN_TASK_MODELS`: the
paper's ``resnet18`` and ``unetpp-resnet`` and the CPU-sized ``small-cnn`` and
``small-unet``. A user's model is loaded with :func:`load_model` (state dict,
checkpoint entry, safetensors, TorchScript or ``torch.export``), checked
before a run with :func:`check_weights`, and fed views as its
:class:`InputContract` says.
"""

from driftlab.models.base import TASKS, TaskModelError, TaskModelSpec
from driftlab.models.check import check_weights
from driftlab.models.contract import InputContract, InputContractError
from driftlab.models.device import DeviceError, resolve_device
from driftlab.models.formats import MODEL_FORMATS, WeightsError, detect_model_format
from driftlab.models.loading import (
    LOADED_FORMATS,
    ExportedProgramModule,
    LoadedModel,
    get_task_model,
    load_model,
    load_task_model,
)
from driftlab.models.reference import RESNET18, SEGMENTATION_EXTRA, UNETPP_RESNET
from driftlab.models.small import SMALL_CNN, SMALL_UNET, SmallCNN, SmallUNet
from driftlab.models.weights import load_weights, read_state_dict, read_weights, save_weights

BUILTIN_TASK_MODELS: tuple[TaskModelSpec, ...] = (RESNET18, UNETPP_RESNET, SMALL_CNN, SMALL_UNET)

__all__ = [
    "BUILTIN_TASK_MODELS",
    "LOADED_FORMATS",
    "MODEL_FORMATS",
    "RESNET18",
    "SEGMENTATION_EXTRA",
    "SMALL_CNN",
    "SMALL_UNET",
    "TASKS",
    "UNETPP_RESNET",
    "DeviceError",
    "ExportedProgramModule",
    "InputContract",
    "InputContractError",
    "LoadedModel",
    "SmallCNN",
    "SmallUNet",
    "TaskModelError",
    "TaskModelSpec",
    "WeightsError",
    "check_weights",
    "detect_model_format",
    "get_task_model",
    "load_model",
    "load_task_model",
    "load_weights",
    "read_state_dict",
    "read_weights",
    "resolve_device",
    "save_weights",
]
