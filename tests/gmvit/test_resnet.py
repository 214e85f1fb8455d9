"""ResNet-18/34 carry torchvision's names and shapes, so its weight files load strictly."""

from __future__ import annotations

import pytest
import torch

from gmvit.errors import GMViTError
from gmvit.model import count_parameters
from gmvit.resnet import resnet, resnet18, resnet34, resnet_trunk

BN_ENTRIES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_resnet_keys(blocks: tuple[int, ...], num_classes: int) -> dict[str, tuple]:
    """torchvision's resnet state_dict layout, written out from its documented structure."""
    keys: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, channels: int) -> None:
        for entry in BN_ENTRIES:
            keys[f"{prefix}.{entry}"] = () if entry == "num_batches_tracked" else (channels,)

    bn("bn1", 64)
    in_channels = 64
    for stage, (count, channels) in enumerate(
        zip(blocks, (64, 128, 256, 512), strict=True), start=1
    ):
        for block in range(count):
            prefix = f"layer{stage}.{block}"
            keys[f"{prefix}.conv1.weight"] = (channels, in_channels, 3, 3)
            bn(f"{prefix}.bn1", channels)
            keys[f"{prefix}.conv2.weight"] = (channels, channels, 3, 3)
            bn(f"{prefix}.bn2", channels)
            if block == 0 and stage > 1:
                keys[f"{prefix}.downsample.0.weight"] = (channels, in_channels, 1, 1)
                bn(f"{prefix}.downsample.1", channels)
            in_channels = channels
    keys["fc.weight"] = (num_classes, 512)
    keys["fc.bias"] = (num_classes,)
    return keys


@pytest.mark.parametrize(
    "build, blocks, state_len, params",
    # state_dict lengths and parameter counts of torchvision's resnet18 / resnet34
    [(resnet18, (2, 2, 2, 2), 122, 11_689_512), (resnet34, (3, 4, 6, 3), 218, 21_797_672)],
)
def test_resnet_matches_torchvision_layout(build, blocks, state_len, params):
    model = build()
    expected = torchvision_resnet_keys(blocks, 1000)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(expected)
    assert ours == expected
    assert len(ours) == state_len
    assert count_parameters(model) == params


def test_torchvision_named_weights_load_strictly_and_are_used():
    generator = torch.Generator().manual_seed(0)
    foreign = {
        key: torch.randint(0, 5, shape, generator=generator)
        if key.endswith("num_batches_tracked")
        else torch.rand(shape, generator=generator) + 0.5
        for key, shape in torchvision_resnet_keys((2, 2, 2, 2), 10).items()
    }
    model = resnet18(num_classes=10)
    model.load_state_dict(foreign, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, foreign[key]), key
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    trunk = resnet_trunk(model)
    features = trunk(x).flatten(1)
    assert torch.allclose(model.fc(features), model(x), atol=1e-5)


def test_trunk_is_the_published_encoder_layout():
    model = resnet34()
    trunk = resnet_trunk(model)
    assert len(trunk) == 9
    assert trunk[0] is model.conv1 and trunk[7] is model.layer4 and trunk[8] is model.avgpool
    assert not any(name.startswith("9") for name in trunk.state_dict())


def test_unknown_cnn_is_refused():
    with pytest.raises(GMViTError, match="resnet50"):
        resnet("resnet50")
