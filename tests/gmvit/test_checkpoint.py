"""Our checkpoint file: everything in one file, loads with no other argument, id = content hash."""

from __future__ import annotations

import pytest
import torch

from gmvit import GMViTError, create_model, load_checkpoint, save_checkpoint
from gmvit.checkpoint import content_hash
from gmvit.model import DESCRIPTOR_VERSION

NAMES = ["chair", "lamp", "vase"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("mini", 12, len(NAMES), image_size=32).eval()


def test_round_trip(model, tmp_path):
    path = tmp_path / "mini.pt"
    model_id = save_checkpoint(path, model, NAMES, {"recipe": "test", "epochs": 1})
    variant, version, digest = model_id.split("-")
    assert (variant, version, len(digest)) == ("mini", f"d{DESCRIPTOR_VERSION}", 12)
    checkpoint = load_checkpoint(path)
    assert checkpoint.model_id == model_id
    assert checkpoint.class_names == NAMES
    assert checkpoint.meta == {
        "recipe": "test",
        "epochs": 1,
        "descriptor_version": DESCRIPTOR_VERSION,
    }
    assert checkpoint.config == model.config
    assert not checkpoint.model.training
    views = torch.randn(2, 12, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(checkpoint.model(views).descriptor, model(views).descriptor)


def test_id_follows_content(model, tmp_path):
    first = save_checkpoint(tmp_path / "a.pt", model, NAMES)
    assert (
        save_checkpoint(tmp_path / "b.pt", model, NAMES, {"note": "meta is not content"}) == first
    )
    with torch.no_grad():
        model.mlp1.bias[0] += 1e-3
    assert save_checkpoint(tmp_path / "c.pt", model, NAMES) != first
    other_config = create_model("mini", 20, len(NAMES), image_size=32)
    other_config.load_state_dict(model.state_dict())
    assert save_checkpoint(tmp_path / "d.pt", other_config, NAMES).split("-")[2] != first


def test_file_of_format_1_loads_under_the_current_descriptor_version(model, tmp_path):
    """Written before the descriptor was versioned: id `<variant>-<hash>`, no version in meta.
    It loads, and its id names what this code computes from it (so an index built from the
    old descriptor is not reused)."""
    path = tmp_path / "old.pt"
    current = save_checkpoint(path, model, NAMES)
    payload = torch.load(path, weights_only=True)
    old_id = f"mini-{content_hash(payload['config'], payload['state_dict'])}"
    payload |= {"version": 1, "model_id": old_id, "meta": {}}
    torch.save(payload, path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.model_id == current != old_id
    assert checkpoint.model_id.split("-")[2] == old_id.split("-")[1]

    payload["state_dict"]["mlp1.bias"][0] += 1.0
    torch.save(payload, path)
    with pytest.raises(GMViTError, match="damaged"):
        load_checkpoint(path)
    payload["version"] = 7
    torch.save(payload, path)
    with pytest.raises(GMViTError, match="unsupported checkpoint version 7"):
        load_checkpoint(path)


def test_class_names_and_meta_are_checked(model, tmp_path):
    with pytest.raises(GMViTError, match="2 class names for a model with 3 classes"):
        save_checkpoint(tmp_path / "x.pt", model, NAMES[:2])
    with pytest.raises(GMViTError, match="plain JSON values"):
        save_checkpoint(tmp_path / "x.pt", model, NAMES, {"loss": torch.tensor(1.0)})
    assert not (tmp_path / "x.pt").exists()


def test_damaged_or_foreign_files_are_refused(model, tmp_path):
    path = tmp_path / "mini.pt"
    save_checkpoint(path, model, NAMES)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["mlp1.weight"][0, 0] += 1.0
    torch.save(payload, path)
    with pytest.raises(GMViTError, match="damaged"):
        load_checkpoint(path)

    published = tmp_path / "model.t7"
    torch.save(model.state_dict(), published)
    with pytest.raises(GMViTError, match="gmvit convert"):
        load_checkpoint(published)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(GMViTError, match="not a gmvit checkpoint"):
        load_checkpoint(garbage)
    with pytest.raises(GMViTError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(GMViTError, match="is a folder, not a gmvit checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(GMViTError, match="the file is empty"):
        load_checkpoint(tmp_path / "empty.pt")


def test_a_file_with_pickled_code_is_refused_in_one_line_that_never_advises_running_it(tmp_path):
    path = tmp_path / "code.pt"
    torch.save({"format": print}, path)  # a reference to a function: unpickling would call it
    with pytest.raises(GMViTError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"{path} is not a gmvit checkpoint: torch cannot read it")
    assert "\n" not in message and "weights_only=False" not in message
