"""CPU-sized task models for quick runs and tests.

Both accept any input size (pooling rounds up, the decoder resizes to the
skip connection), train in seconds on 64x64 views on a CPU and are
TorchScript- and ``torch.export``-compatible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from driftlab.models.base import TaskModelError, TaskModelSpec

__all__ = ["SMALL_CNN", "SMALL_UNET", "SmallCNN", "SmallUNet", "small_cnn", "small_unet"]


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(*_conv_bn_relu(cin, cout), *_conv_bn_relu(cout, cout))


def _check_width(width: object, model: str) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise TaskModelError(f"task model {model!r}: width must be an int >= 1, got {width!r}")
    return width


class SmallCNN(nn.Module):
    """Three convolution blocks, global average pooling and a linear classifier.

    Layers: [3x3 conv, batch norm, ReLU, 2x2 max-pool] with ``width`` and
    ``2 * width`` channels, a last [3x3 conv, batch norm, ReLU] with
    ``4 * width`` channels, global average pooling, linear layer.

    Parameters
    ----------
    num_classes : int
        Output logits.
    in_channels : int
        Input channels (3 for views).
    width : int
        Channels of the first block.

    Notes
    -----
    ``forward`` maps ``(B, in_channels, H, W)`` float to ``(B, num_classes)`` logits.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, width),
            nn.MaxPool2d(2, ceil_mode=True),
            *_conv_bn_relu(width, 2 * width),
            nn.MaxPool2d(2, ceil_mode=True),
            *_conv_bn_relu(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, num_classes)`` logits."""
        return self.classifier(self.features(x))


class SmallUNet(nn.Module):
    """Two-level U-Net (Ronneberger et al., MICCAI 2015) with batch norm.

    Encoder: double 3x3 conv blocks with ``width``, ``2 * width`` and
    ``4 * width`` channels separated by 2x2 max-pooling; decoder: bilinear
    upsampling to the skip connection's size, concatenation, double conv;
    a 1x1 convolution gives the logits.

    Parameters
    ----------
    num_classes : int
        Output channels (1 for binary segmentation logits).
    in_channels : int
        Input channels (3 for views).
    width : int
        Channels of the first block.

    Notes
    -----
    ``forward`` maps ``(B, in_channels, H, W)`` float to ``(B, num_classes, H, W)`` logits.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.enc1 = _double_conv(in_channels, width)
        self.enc2 = _double_conv(width, 2 * width)
        self.bottom = _double_conv(2 * width, 4 * width)
        self.dec2 = _double_conv(6 * width, 2 * width)
        self.dec1 = _double_conv(3 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        size = (like.shape[-2], like.shape[-1])
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, num_classes, H, W)`` logits."""
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        bottom = self.bottom(self.pool(e2))
        d2 = self.dec2(torch.cat([self._up(bottom, e2), e2], dim=1))
        d1 = self.dec1(torch.cat([self._up(d2, e1), e1], dim=1))
        return self.head(d1)


def small_cnn(num_classes: int, in_channels: int = 3, width: int = 16) -> SmallCNN:
    """Factory of :class:`SmallCNN` (registry name ``small-cnn``)."""
    return SmallCNN(num_classes, in_channels, _check_width(width, "small-cnn"))


def small_unet(num_classes: int, in_channels: int = 3, width: int = 16) -> SmallUNet:
    """Factory of :class:`SmallUNet` (registry name ``small-unet``)."""
    return SmallUNet(num_classes, in_channels, _check_width(width, "small-unet"))


SMALL_CNN = TaskModelSpec(
    name="small-cnn",
    task="classification",
    doc="three-block CNN classifier for quick CPU runs (about 24k parameters at width 16)",
    factory=small_cnn,
    reference="driftlab (CPU-sized stand-in for ResNet-18)",
)

SMALL_UNET = TaskModelSpec(
    name="small-unet",
    task="segmentation",
    doc="two-level U-Net segmenter for quick CPU runs (about 120k parameters at width 16)",
    factory=small_unet,
    reference="Ronneberger et al., MICCAI 2015 (U-Net), reduced; driftlab",
)
