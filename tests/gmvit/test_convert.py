"""`gmvit convert`: a published state_dict file becomes a checkpoint that loads on its own."""

from __future__ import annotations

import torch

from app.cli import main
from gmvit import create_model, load_checkpoint


def published_mini(tmp_path, num_classes: int = 3):
    torch.manual_seed(0)
    model = create_model("mini", 12, num_classes).eval()
    path = tmp_path / "model.t7"
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)
    return model, path


def test_convert_writes_a_loadable_checkpoint(tmp_path, capsys):
    model, source = published_mini(tmp_path)
    names = tmp_path / "classes.txt"
    names.write_text("bed\nchair\n\ndesk\n")
    output = tmp_path / "out" / "mini.pt"
    argv = ["convert", "--variant", "mini", "--views", "12", "--classes", "3", str(source)]
    code = main([*argv, "-o", str(output), "--class-names", str(names)])
    assert code == 0
    checkpoint = load_checkpoint(output)
    assert capsys.readouterr().out.strip() == f"{output}: {checkpoint.model_id}"
    assert checkpoint.class_names == ["bed", "chair", "desk"]
    assert checkpoint.meta["source_file"] == "model.t7"
    assert checkpoint.config.image_size == 224 and checkpoint.config.rig == "circle-12"
    for key, value in model.state_dict().items():
        assert torch.equal(checkpoint.model.state_dict()[key], value)


def test_convert_refuses_a_file_of_another_model(tmp_path, capsys):
    _, source = published_mini(tmp_path)
    output = tmp_path / "simple.pt"
    argv = ["convert", "--variant", "simple", "--views", "12", "--classes", "3", str(source)]
    assert main([*argv, "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("gmvit: error: the checkpoint is not a GMViT-simple")
    assert "missing (first: 'cls_token_1')" in error
    assert not output.exists()


def test_convert_checks_the_class_names(tmp_path, capsys):
    _, source = published_mini(tmp_path)
    names = tmp_path / "classes.txt"
    names.write_text("bed\nchair\n")
    argv = ["convert", "--variant", "mini", "--views", "12", "--classes", "3", str(source)]
    assert main([*argv, "-o", str(tmp_path / "x.pt"), "--class-names", str(names)]) == 2
    assert "names 2 classes, but --classes is 3" in capsys.readouterr().err
