"""Image backbones behind one registry: torchvision ResNets (never downloaded) and a small CPU CNN.

``build_backbone(name, **kw)`` returns an ``nn.Module`` mapping ``(B, C, H, W)`` images to
``(B, out_dim)`` pooled features, or to the last feature map with ``pooled=False``. Apps and
users add their own with ``@BACKBONES.register("name")``; pretrained weights come only from a
local file through :func:`shared.weights.load_backbone`.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")


def _torchvision_resnet(factory: Callable[..., nn.Module], in_channels: int, pooled: bool) -> nn.Module:
    model = factory(weights=None)
    out_dim = model.fc.in_features
    model.fc = nn.Identity()
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if not pooled:
        model.avgpool = nn.Identity()
        model.forward = _feature_map_forward.__get__(model)  # type: ignore[method-assign]
    model.out_dim = out_dim  # type: ignore[assignment]
    return model


def _feature_map_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@BACKBONES.register("resnet18")
def resnet18(in_channels: int = 3, pooled: bool = True, cifar_stem: bool = False) -> nn.Module:
    """torchvision ResNet-18 (random init); ``cifar_stem`` uses a 3x3 stride-1 stem without max-pool."""
    from torchvision.models import resnet18 as tv_resnet18

    model = _torchvision_resnet(tv_resnet18, in_channels, pooled)
    if cifar_stem:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


@BACKBONES.register("resnet50")
def resnet50(in_channels: int = 3, pooled: bool = True) -> nn.Module:
    """torchvision ResNet-50 (random init)."""
    from torchvision.models import resnet50 as tv_resnet50

    return _torchvision_resnet(tv_resnet50, in_channels, pooled)


class SlimResNet(nn.Module):
    """ResNet-18 layout (torchvision ``BasicBlock``s, same parameter names) at a reduced base width.

    ``width=64`` is exactly torchvision's ResNet-18; ``width=16`` has 1/16 of its parameters (0.7 M),
    small enough to ship and to pretrain on CPU. ``layer1..4`` give ``width * (1, 2, 4, 8)`` channels.
    """

    def __init__(self, width: int = 16, in_channels: int = 3, pooled: bool = True) -> None:
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for index, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2 ** index
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(planes))
            blocks = [BasicBlock(self.inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
            self.inplanes = planes
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Identity()
        self.pooled = pooled
        self.width = width
        self.out_dim = width * 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1) if self.pooled else x


@BACKBONES.register("resnet18_slim")
def resnet18_slim(in_channels: int = 3, width: int = 16, pooled: bool = True) -> nn.Module:
    """ResNet-18 with base width ``width`` (default 16) and torchvision's parameter names."""
    return SlimResNet(width, in_channels, pooled)


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU stages (stride 1, 2, 2, 2) for CPU-sized experiments (~0.1-0.4 M params)."""

    def __init__(self, in_channels: int = 3, width: int = 32, pooled: bool = True) -> None:
        super().__init__()
        widths = [width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        channels = in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(channels, w, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                       nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            channels = w
        self.features = nn.Sequential(*layers)
        self.pooled = pooled
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1) if self.pooled else x


@BACKBONES.register("small_cnn")
def small_cnn(in_channels: int = 3, width: int = 32, pooled: bool = True) -> nn.Module:
    return SmallCNN(in_channels, width, pooled)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a registered backbone by name (raises a UsageError listing the choices if unknown)."""
    return BACKBONES.build(name, **kwargs)


@BACKBONES.register("dgcnn")
def dgcnn(in_channels: int = 6, k: int = 20, width: int = 64, global_dim: int = 512) -> nn.Module:
    """DGCNN (EdgeConv) point-cloud encoder, see :mod:`shared.pointnets` (returns per-point and global features)."""
    from .pointnets import build_dgcnn

    return build_dgcnn(in_channels, k, width, global_dim)
