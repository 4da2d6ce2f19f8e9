"""Fixtures for the genesis_launch package's tests: config trees in a temporary folder,
the test evaluators, and the E2B emulator program."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SOURCE = Path(os.environ.get("GENESIS_SOURCE_DIR", Path(__file__).resolve().parents[2]))
DATA = SOURCE / "tests" / "data"
PYTHON = os.environ.get("GENESIS_TEST_PYTHON", sys.executable)


def evaluator(name: str) -> Path:
    return DATA / "evaluators" / name


def program(name: str) -> Path:
    return DATA / "programs" / name


def write_tree(root: Path, job_config: str = "", evo_config: str = "", extra: str = "") -> Path:
    """A minimal config tree (config.yaml + cluster/local.yaml) under root/configs."""
    configs = root / "configs"
    (configs / "cluster").mkdir(parents=True, exist_ok=True)
    (configs / "config.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          - _self_
          - cluster@_global_: local
        results_dir: {json.dumps(str(root / "results"))}
        evo_config:
          job_type: local
          max_parallel_jobs: 4
          init_program_path: {json.dumps(str(program("good.py")))}
        job_config:
          eval_program_path: {json.dumps(str(evaluator("ok.py")))}
          python: {json.dumps(PYTHON)}
        """) + textwrap.dedent(extra))
    (configs / "cluster" / "local.yaml").write_text(
        "job_config:\n  _target_: genesis.launch.LocalJobConfig\n" + textwrap.indent(textwrap.dedent(job_config), "  ")
        + "evo_config:\n  job_type: local\n" + textwrap.indent(textwrap.dedent(evo_config), "  "))
    return configs


@pytest.fixture
def tree(tmp_path):
    write_tree(tmp_path)
    return tmp_path


def bubblewrap_works() -> bool:
    bwrap = shutil.which("bwrap") or "/usr/bin/bwrap"
    if not os.path.exists(bwrap):
        return False
    r = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


class Emulator:
    """The genesis_e2b_emulator program; its ready line gives the URL and key."""

    def __init__(self, *args: str) -> None:
        path = os.environ.get("GENESIS_E2B_EMULATOR")
        if not path:
            pytest.skip("the E2B emulator was not built")
        if not bubblewrap_works():
            pytest.skip("bubblewrap cannot run sandboxes here")
        self.process = subprocess.Popen([path, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        ready = json.loads(line)
        self.url = ready["api_url"]
        self.key = ready["api_key"]

    def env(self) -> dict:
        return {"E2B_API_URL": self.url, "E2B_SANDBOX_URL": self.url, "E2B_API_KEY": self.key}

    def stats(self) -> dict:
        import urllib.request
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def emulator():
    e = Emulator()
    yield e
    e.stop()


def wait_for(predicate, limit: float = 30.0, what: str = "condition"):
    """Polls predicate until it holds; fails after `limit` seconds (a bound, not a wait-and-hope)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {limit} s")


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False
