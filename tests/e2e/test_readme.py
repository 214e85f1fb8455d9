"""The README's first command brings the service up on the embedded default, and the curl
examples of its service section work as written (only the port is changed, to a free one;
they run in a folder whose `var/` is the server's data dir, as in the repository root)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import REPO, Process, free_port, wait_ready
from tests.polling import wait_job

pytestmark = pytest.mark.slow

README = REPO / "README.md"


def service_section() -> str:
    text = README.read_text()
    start = text.index("<!-- section: service -->")
    end = text.find("<!-- section:", start + 1)
    layout = text.find("\n## Layout", start)
    ends = [i for i in (end, layout) if i != -1]
    return text[start : min(ends) if ends else len(text)]


def curl_commands() -> list[str]:
    """Each command of the API example block, continuation lines joined, comments dropped."""
    section = service_section()
    api = section[section.index("### API") :]
    block = re.search(r"```sh\n(.*?)```", api, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("curl")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Process]]:
    workdir = tmp_path_factory.mktemp("readme")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMVIT_")}
    env["GMVIT_DATA_DIR"] = str(workdir / "var")
    process = Process(
        [str(REPO / "scripts" / "serve.sh"), "--port", str(port)], env, workdir / "serve.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, timeout_s=600)
        with httpx.Client(base_url=url, timeout=60) as http:
            demo = http.get("/jobs").json()["jobs"]
            assert [job["kind"] for job in demo] == ["demo"]
            assert wait_job(http, demo[0]["id"])["state"] == "succeeded", process.tail()
        yield url, workdir, process
    finally:
        process.stop()


def test_serve_sh_starts_on_the_demo_with_the_dev_key(served) -> None:
    url, _, process = served
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["ready"] and ready["shapes"] == 30
    notices = [line for line in process.output().splitlines() if line.startswith("serve: ")]
    assert any("development key 'dev-key'" in line for line in notices), process.tail()


def test_the_curl_examples_work_as_written(served) -> None:
    url, workdir, _ = served
    commands = curl_commands()
    assert len(commands) >= 10
    answers = []
    for command in commands:
        run = subprocess.run(
            ["bash", "-c", command.replace("http://127.0.0.1:8000", url)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, (command, run.stderr)
        if "-o " in command:
            continue
        answer = json.loads(run.stdout)
        failed = isinstance(answer, dict) and isinstance(answer.get("detail"), str)
        assert not failed, (command, answer)
        answers.append((command, answer))

    by_route = {}
    for command, answer in answers:
        by_route.setdefault(re.search(r"8000(/[a-z]+)", command).group(1), []).append(answer)
    classify = by_route["/classify"][0]
    assert classify["neighbors"]["k"] == 3 and len(classify["probabilities"]) == 5
    assert len(by_route["/search"][0]["results"]) == 5
    assert all(hit["label"] == "bed" for hit in by_route["/search"][1]["results"])
    added = by_route["/shapes"][0]
    assert added["duplicate"] is False and added["shape"]["label"] == "toilet"
    assert (workdir / "shape-1.png").read_bytes().startswith(b"\x89PNG")
    reindex = by_route["/reindex"][0]
    with httpx.Client(base_url=url) as http:
        assert wait_job(http, reindex["id"])["state"] == "succeeded"
        labels = sorted(s["label"] for s in http.get("/shapes").json()["shapes"])
    assert labels == ["bed", "chair"]
