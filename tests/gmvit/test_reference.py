"""Published checkpoints (the spec's key names, with or without `module.`) load or are refused."""

from __future__ import annotations

import re

import pytest
import torch

from gmvit import GMViTError, create_model, load_reference

NUM_CLASSES = 5

# GMVIT_SPEC.md, "Checkpoint names of the published code", as patterns.
BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
RESNET_CHILD = (
    r"encoder_net_1\.(0\.weight|1\."
    + BN
    + r"|[4-7]\.\d+\.(conv[12]\.weight|bn[12]\."
    + BN
    + r"|downsample\.0\.weight|downsample\.1\."
    + BN
    + r"))"
)
STUDENT_CNN = r"encoder_net_1\.(conv[1-4]\.weight|bn[1-4]\." + BN + ")"
VIT = (
    r"cls_token_[12]|cls_pos_[12]|pos_embed_[12]\.[02]\.(weight|bias)"
    r"|blocks_[12]\.blocks\.\d+\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)"
    r"|norm\.(weight|bias)|attention\.0\.(weight|bias)"
)
HEAD = r"cls_head_finetune\.([048]\.(weight|bias)|[15]\." + BN + ")"
SPEC_KEYS = {
    "teacher": "|".join([RESNET_CHILD, r"encoder_net_2\.(weight|bias)", VIT, HEAD]),
    "simple": "|".join([STUDENT_CNN, VIT, HEAD]),
    "mini": "|".join([STUDENT_CNN, r"(mlp1|mlp2|attention|norm)\.(weight|bias)", HEAD]),
}


def published_state_dict(model, data_parallel: bool) -> dict[str, torch.Tensor]:
    """What the authors' code saves for these weights: ours plus the teacher's unused fc."""
    state = dict(model.state_dict())
    if model.config.variant == "teacher":
        state["encoder_net_2.weight"] = torch.randn(NUM_CLASSES, 512)
        state["encoder_net_2.bias"] = torch.randn(NUM_CLASSES)
    prefix = "module." if data_parallel else ""
    return {prefix + key: value for key, value in state.items()}


@pytest.fixture(scope="module")
def sources():
    torch.manual_seed(0)
    models = {}
    for variant in ("teacher", "simple", "mini"):
        for views in (12, 20):
            model = create_model(variant, views, NUM_CLASSES, image_size=32)
            with torch.no_grad():  # non-default BN statistics, so loading them is visible
                for module in model.modules():
                    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                        module.running_mean.uniform_(-0.5, 0.5)
                        module.running_var.uniform_(0.5, 2.0)
            models[variant, views] = model.eval()
    return models


@pytest.mark.parametrize("variant", ["teacher", "simple", "mini"])
@pytest.mark.parametrize("views", [12, 20])
@pytest.mark.parametrize("data_parallel", [False, True])
def test_spec_named_state_dict_loads(sources, variant, views, data_parallel):
    source = sources[variant, views]
    state = published_state_dict(source, data_parallel)
    pattern = re.compile(("module\\." if data_parallel else "") + f"({SPEC_KEYS[variant]})")
    assert all(pattern.fullmatch(key) for key in state), [
        k for k in state if not pattern.fullmatch(k)
    ]
    model = load_reference(state, variant, views, NUM_CLASSES, image_size=32)
    assert not model.training
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_loaded_model_computes_what_the_source_computes(sources, tmp_path):
    source = sources["simple", 20]
    path = tmp_path / "model.t7"
    torch.save(published_state_dict(source, data_parallel=True), path)
    model = load_reference(path, "simple", 20, NUM_CLASSES, image_size=32)
    views = torch.randn(2, 20, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(views).logits, source(views).logits)


def test_file_without_batch_counters_loads(sources):
    state = published_state_dict(sources["mini", 12], data_parallel=False)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    load_reference(state, "mini", 12, NUM_CLASSES)


def test_wrong_file_is_refused_naming_the_keys(sources):
    state = published_state_dict(sources["simple", 12], data_parallel=False)
    del state["blocks_1.blocks.0.attn.qkv.weight"]
    state["blocks_1.blocks.0.attn.qkv.bias"] = torch.zeros(1536)
    with pytest.raises(GMViTError) as caught:
        load_reference(state, "simple", 12, NUM_CLASSES)
    message = str(caught.value)
    assert "missing (first: 'blocks_1.blocks.0.attn.qkv.weight')" in message
    assert "unexpected (first: 'blocks_1.blocks.0.attn.qkv.bias')" in message


def test_other_variant_is_refused(sources):
    state = published_state_dict(sources["mini", 12], data_parallel=False)
    with pytest.raises(GMViTError, match=r"missing \(first: 'cls_token_1'\).*unexpected"):
        load_reference(state, "simple", 12, NUM_CLASSES)


def test_wrong_class_count_is_refused_naming_the_shape(sources):
    state = published_state_dict(sources["mini", 12], data_parallel=False)
    with pytest.raises(GMViTError, match=r"'cls_head_finetune.8.weight' has shape \(5, 256\)"):
        load_reference(state, "mini", 12, 40)


def test_file_that_is_not_a_state_dict_is_refused(tmp_path):
    text = tmp_path / "model.t7"
    text.write_text("not a checkpoint")
    with pytest.raises(GMViTError, match="not a PyTorch state_dict"):
        load_reference(text, "mini", 12, NUM_CLASSES)
    nested = tmp_path / "nested.t7"
    torch.save({"epoch": 3}, nested)
    with pytest.raises(GMViTError, match="mapping of parameter names to tensors"):
        load_reference(nested, "mini", 12, NUM_CLASSES)
    with pytest.raises(GMViTError, match="no such checkpoint"):
        load_reference(tmp_path / "absent.t7", "mini", 12, NUM_CLASSES)
