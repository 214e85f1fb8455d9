"""The client commands' failure modes: one line on stderr, exit code 2."""

from __future__ import annotations

import socket

import pytest

from app.cli import main


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "{mesh}"],
        ["search", "{mesh}", "-k", "5"],
        ["index", "ls"],
        ["index", "rm", "3"],
        ["reindex", "{dir}"],
    ],
)
def test_a_server_that_does_not_answer_is_one_line_and_exit_2(argv, tmp_path, capsys) -> None:
    mesh = tmp_path / "m.off"
    mesh.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    url = f"http://127.0.0.1:{closed_port()}"
    args = [a.format(mesh=mesh, dir=tmp_path) for a in argv] + ["--url", url]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("gmvit: error: cannot reach the gmvit server at " + url)


def test_a_missing_file_is_reported_before_any_request(tmp_path, capsys) -> None:
    assert main(["classify", str(tmp_path / "nope.off"), "--url", "http://127.0.0.1:9"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["classify", "{dir}", "--url", "http://127.0.0.1:9"], ["render", "{dir}", "-o", "x.png"]],
)
def test_a_folder_given_for_a_file_is_named_as_such(argv, tmp_path, capsys) -> None:
    assert main([a.format(dir=tmp_path) for a in argv]) == 2
    assert capsys.readouterr().err.strip() == f"gmvit: error: {tmp_path}: a folder, not a file"


def test_the_worker_needs_redis(monkeypatch, capsys) -> None:
    monkeypatch.delenv("GMVIT_REDIS_URL", raising=False)
    assert main(["worker"]) == 2
    assert "GMVIT_REDIS_URL" in capsys.readouterr().err


def test_a_setting_that_does_not_fit_is_one_line_naming_it_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("GMVIT_WORKERS", "two")
    monkeypatch.setenv("GMVIT_PRECISION", "fp16")
    monkeypatch.setenv("GMVIT_API_KEY", "")
    assert main(["index", "check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("gmvit: error: ")
    assert "GMVIT_WORKERS: Input should be a valid integer" in err and "'two'" in err
    assert "GMVIT_PRECISION: Input should be 'auto', 'fp32' or 'bf16'" in err
