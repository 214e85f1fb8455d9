"""ResNet-18 and ResNet-34 with torchvision's module names, so its weight files load as they are.

`torchvision` itself is not a dependency: the layers below are the same modules in the same
order under the same names (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`,
...), so `ResNet.load_state_dict(torchvision_state_dict, strict=True)` works.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmvit.errors import GMViTError

# Blocks per stage, as in torchvision.
_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet with basic blocks; children in torchvision's order."""

    def __init__(self, layers: tuple[int, int, int, int], num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._stage(64, 64, layers[0], stride=1)
        self.layer2 = self._stage(64, 128, layers[1], stride=2)
        self.layer3 = self._stage(128, 256, layers[2], stride=2)
        self.layer4 = self._stage(256, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @staticmethod
    def _stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
        first = BasicBlock(in_channels, channels, stride)
        return nn.Sequential(first, *(BasicBlock(channels, channels) for _ in range(blocks - 1)))

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(name: str, num_classes: int = 1000) -> ResNet:
    """`resnet("resnet18")` or `resnet("resnet34")`, randomly initialised like torchvision."""
    if name not in _LAYERS:
        raise GMViTError(f"unknown CNN {name!r}; choose one of {sorted(_LAYERS)}")
    return ResNet(_LAYERS[name], num_classes)


def resnet18(num_classes: int = 1000) -> ResNet:
    return resnet("resnet18", num_classes)


def resnet34(num_classes: int = 1000) -> ResNet:
    return resnet("resnet34", num_classes)


def resnet_trunk(model: ResNet) -> nn.Sequential:
    """The ResNet without `fc`, as the published GMViT holds it: children 0 conv1 ... 8 avgpool.

    The modules are shared with `model`, so weights loaded into a ResNet (for example an
    ImageNet or single-view classifier) carry over to a teacher built from this trunk.
    """
    return nn.Sequential(*list(model.children())[:-1])
