"""`gmvit classify|search|index|reindex` against a real server: the first as a process
(the entry point, the progress bar on stderr), the rest through `app.cli.main` in this
process to spare a torch import per command."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from tests.e2e.conftest import API_KEY, GMVIT, REPO, Server, held_out, service_env, train_only

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("cli")
    allowed = root / "allowed"
    allowed.mkdir()
    server = Server(service_env(root / "var", allowed_roots=allowed), root / "server.log")
    yield server, allowed
    server.stop()


def gmvit(server: Server, *args: str, key: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMVIT_")}
    env["GMVIT_URL"] = server.url
    if key:
        env["GMVIT_API_KEY"] = API_KEY
    return subprocess.run(
        [*GMVIT, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_reindex_a_server_folder_then_classify_and_search(setup, synthetic_set) -> None:
    server, allowed = setup
    folder = train_only(synthetic_set, allowed / "train")
    run = gmvit(server, "reindex", str(folder))
    assert run.returncode == 0, run.stderr
    count = len(list(folder.glob("*/train/*.off")))
    assert f"succeeded: {count} indexed, 0 failed" in run.stdout
    assert "reindex" in run.stderr and f"{count}/{count}" in run.stderr  # the progress bar

    label, mesh = held_out(synthetic_set)[0]
    run = gmvit(server, "classify", str(mesh), "-k", "1")
    assert run.returncode == 0, run.stderr
    assert f"vote of 1 nearest: {label}" in run.stdout

    run = gmvit(server, "search", str(mesh), "-k", "3", "--json")
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) == 3 and results[0]["label"] == label


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(setup, monkeypatch, capsys):
    server, _ = setup
    for name in [k for k in os.environ if k.startswith("GMVIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GMVIT_URL", server.url)

    def run(*args: str, key: bool = True) -> Result:
        if key:
            monkeypatch.setenv("GMVIT_API_KEY", API_KEY)
        else:
            monkeypatch.delenv("GMVIT_API_KEY", raising=False)
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def test_index_add_ls_rm(cli, synthetic_set) -> None:
    meshes = [path for _, path in held_out(synthetic_set)][:2]
    run = cli("index", "add", *map(str, meshes), "--label", "cli-added")
    assert run.returncode == 0, run.stderr
    ids = [int(line.split("\t")[0]) for line in run.stdout.splitlines()]
    assert len(ids) == 2

    again = cli("index", "add", str(meshes[0]), "--label", "cli-added")
    assert again.returncode == 0 and "(already indexed)" in again.stdout

    listing = cli("index", "ls", "--label", "cli-added")
    assert listing.returncode == 0, listing.stderr
    assert sorted(int(line.split("\t")[0]) for line in listing.stdout.splitlines()[:-1]) == ids
    assert listing.stdout.splitlines()[-1] == "1-2 of 2"

    assert cli("index", "rm", str(ids[0])).returncode == 0
    gone = cli("index", "rm", str(ids[0]))
    assert gone.returncode == 2
    assert (
        gone.stderr.strip()
        == f"gmvit: error: 404 from DELETE /shapes/{ids[0]}: shape {ids[0]} not found"
    )


def test_errors_are_one_line_and_exit_2(cli, tmp_path) -> None:
    junk = tmp_path / "junk.off"
    junk.write_bytes(b"OFF\nnonsense\n")
    run = cli("classify", str(junk))
    assert run.returncode == 2 and run.stderr.startswith("gmvit: error: 422 from POST /classify")
    assert run.stderr.count("\n") == 1

    no_key = cli("index", "add", str(junk), key=False)
    assert no_key.returncode == 2 and "401" in no_key.stderr and "X-API-Key" in no_key.stderr

    outside = cli("reindex", str(tmp_path))
    assert outside.returncode == 2 and "403" in outside.stderr and "outside" in outside.stderr
