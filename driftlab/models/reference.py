"""The paper's task models: ResNet-18 classifier and U-Net++ segmenter.

Both are built with random initialisation: pretrained ImageNet weights
cannot be downloaded at run time (DESIGN section 5); load trained weights
with :func:`driftlab.models.load_model`. torchvision and
segmentation-models-pytorch are imported only when a model is built;
segmentation-models-pytorch is optional (``pip install 'driftlab[segmentation]'``).
"""

from __future__ import annotations

from types import ModuleType

from torch import nn

from driftlab.models.base import TaskModelError, TaskModelSpec

__all__ = [
    "RESNET18",
    "RESNET_ENCODERS",
    "SEGMENTATION_EXTRA",
    "UNETPP_RESNET",
    "import_smp",
    "resnet18",
    "unetpp_resnet",
]

SEGMENTATION_EXTRA = "segmentation"
"""The pip extra that installs segmentation-models-pytorch (with timm and huggingface-hub)."""

RESNET_ENCODERS: tuple[str, ...] = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x4d",
    "resnext101_32x8d",
    "resnext101_32x16d",
    "resnext101_32x32d",
    "resnext101_32x48d",
)
"""ResNet-family encoders of segmentation-models-pytorch accepted by ``unetpp-resnet``."""


def import_smp(model: str) -> ModuleType:
    """Import segmentation-models-pytorch, or say which extra installs it.

    Parameters
    ----------
    model : str
        Task model that needs it (for the message).

    Returns
    -------
    module
        ``segmentation_models_pytorch``.

    Raises
    ------
    TaskModelError
        The package (or one of its dependencies, timm and huggingface-hub) is
        missing: the message names ``pip install 'driftlab[segmentation]'``.
    """
    try:
        import segmentation_models_pytorch as smp
    except ImportError as exc:
        raise TaskModelError(
            f"task model {model!r} needs segmentation-models-pytorch, which could not be "
            f"imported ({exc}); install the extra: pip install 'driftlab[{SEGMENTATION_EXTRA}]'"
        ) from None
    return smp


def resnet18(num_classes: int, in_channels: int = 3) -> nn.Module:
    """ResNet-18 with random weights and ``num_classes`` outputs.

    Parameters
    ----------
    num_classes : int
        Size of the last (fully connected) layer.
    in_channels : int
        Input channels; for a value other than 3 the first 7x7 convolution
        is replaced by one with ``in_channels`` inputs (Kaiming-normal
        initialised, as torchvision does).

    Returns
    -------
    torchvision.models.ResNet
        Maps ``(B, in_channels, H, W)`` to ``(B, num_classes)`` logits.

    Notes
    -----
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016;
    ``torchvision.models.resnet18(weights=None)``.
    """
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def unetpp_resnet(
    num_classes: int, in_channels: int = 3, encoder_name: str = "resnet34"
) -> nn.Module:
    """U-Net++ with a ResNet encoder, random weights, ``num_classes`` logit channels.

    Parameters
    ----------
    num_classes : int
        Output channels: 1 for binary segmentation (car vs background), else
        one logit channel per class.
    in_channels : int
        Input channels.
    encoder_name : str
        One of :data:`RESNET_ENCODERS`. The paper names a ResNet encoder
        without its depth; ``resnet34`` is segmentation-models-pytorch's
        default.

    Returns
    -------
    segmentation_models_pytorch.UnetPlusPlus
        Maps ``(B, in_channels, H, W)`` to ``(B, num_classes, H, W)`` logits
        (no activation); H and W must be multiples of 32.

    Raises
    ------
    TaskModelError
        If ``encoder_name`` is not a ResNet-family encoder, or
        segmentation-models-pytorch is not installed (the message names the
        ``driftlab[segmentation]`` extra).

    Notes
    -----
    Zhou et al., "UNet++: A Nested U-Net Architecture for Medical Image
    Segmentation", DLMIA 2018; ``segmentation_models_pytorch.UnetPlusPlus``
    with ``encoder_weights=None`` (nothing is downloaded).
    """
    if encoder_name not in RESNET_ENCODERS:
        raise TaskModelError(
            f"task model 'unetpp-resnet': encoder_name must be one of "
            f"{', '.join(RESNET_ENCODERS)}; got {encoder_name!r}"
        )
    smp = import_smp("unetpp-resnet")
    return smp.UnetPlusPlus(
        encoder_name=encoder_name,
        encoder_weights=None,
        in_channels=in_channels,
        classes=num_classes,
        activation=None,
    )


RESNET18 = TaskModelSpec(
    name="resnet18",
    task="classification",
    doc="ResNet-18, random initialisation, last layer to the class count (the paper's classifier)",
    factory=resnet18,
    reference="He et al., CVPR 2016; torchvision.models.resnet18; Oala et al., TMLR 2023",
)

UNETPP_RESNET = TaskModelSpec(
    name="unetpp-resnet",
    task="segmentation",
    doc="U-Net++ with a ResNet encoder, random initialisation (the paper's segmenter)",
    factory=unetpp_resnet,
    reference=(
        "Zhou et al., DLMIA 2018; segmentation-models-pytorch UnetPlusPlus; Oala et al., TMLR 2023"
    ),
    size_multiple=32,
)
