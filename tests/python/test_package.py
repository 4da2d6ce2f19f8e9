"""genesis_launch from Python: load_config, Launcher.submit (concurrent.futures),
Launcher.evaluate (asyncio), JobResult, cancellation, timeouts, callbacks, shutdown."""
import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import genesis_launch as gl
from conftest import PYTHON, SOURCE, evaluator, process_alive, program, wait_for, write_tree


# ---- configuration ------------------------------------------------------------------------

def test_load_config_is_a_dict_view_of_the_merged_tree(tree):
    config = gl.load_config(tree / "configs", ["+task.marker=42"], working_dir=tree)
    assert config["task"] == {"marker": 42}
    assert config["job_config"]["_target_"] == "genesis.launch.LocalJobConfig"
    assert "evo_config" in config and len(config) >= 4
    assert config.job_type == "local"
    assert config.max_parallel_jobs == 4
    assert config.init_program_path == program("good.py")
    assert [p.name for p in config.sources] == ["config.yaml", "local.yaml"]
    with pytest.raises(TypeError):
        config["task"] = 1  # read-only


def test_load_config_reads_the_repository_configs():
    config = gl.load_config(SOURCE / "configs", ["variant=circle_packing_example", "cluster=e2b"],
                            working_dir=SOURCE)
    assert config.job_type == "e2b"
    assert config["job_config"]["dependencies"] == ["numpy"]


def test_config_errors_carry_file_line_and_key(tree):
    (tree / "configs" / "cluster" / "local.yaml").write_text("job_config:\n  python: python3\n  tme: 5\n")
    with pytest.raises(gl.ConfigError) as e:
        gl.load_config(tree / "configs", working_dir=tree)
    assert str(e.value) == "configs/cluster/local.yaml:3: job_config.tme: unknown key (did you mean 'time'?)"
    assert (e.value.file, e.value.line, e.value.key) == ("configs/cluster/local.yaml", 3, "job_config.tme")
    assert isinstance(e.value, ValueError)
    with pytest.raises(gl.ConfigError, match="cluster 'nope' not found"):
        gl.load_config(tree / "configs", ["cluster=nope"], working_dir=tree)
    with pytest.raises(gl.ConfigError) as e:
        gl.load_config(tree / "configs", ["job_config.tme=5"], working_dir=tree)
    assert (e.value.file, e.value.line, e.value.key, e.value.override) == (None, None, "job_config.tme",
                                                                            "job_config.tme=5")
    with pytest.raises(TypeError):
        gl.load_config(tree / "configs", "variant=x")


def test_env_file_supplies_credentials(tree, monkeypatch):
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    env_file = tree / "secrets.env"
    env_file.write_text("E2B_API_KEY=e2b_from_file\n")
    config = gl.load_config(tree / "configs", ["evo_config.job_type=e2b"], env_file=env_file, working_dir=tree)
    assert config.job_type == "e2b"
    assert "e2b_from_file" not in json.dumps(config.to_dict())


# ---- submit and results --------------------------------------------------------------------

def test_submit_returns_a_future_of_a_job_result(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    with gl.Launcher(config) as launcher:
        future = launcher.submit(program("good.py"), job_id="first")
        assert isinstance(future, concurrent.futures.Future)
        result = future.result(timeout=60)
    assert isinstance(result, gl.JobResult)
    assert result.job_id == "first"
    assert result.outcome == "ok" and result.outcome is gl.Outcome.OK
    assert result.succeeded and result.correct
    assert isinstance(result.results_dir, Path) and result.results_dir == tree / "results" / "first"
    assert result.metrics["combined_score"] == result.combined_score
    assert "hello stdout" in result.stdout and "hello stderr" in result.stderr
    assert result.timings.total >= result.timings.run > 0
    d = result.to_dict()
    assert d["outcome"] == "ok" and d["job_id"] == "first" and d["results_dir"] == str(result.results_dir)
    assert set(d["timings"]) == {"queued_s", "create_s", "setup_s", "run_s", "download_s", "cleanup_s", "total_s"}


def test_the_json_shape_is_the_cli_s(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    with gl.Launcher(config) as launcher:
        d = launcher.submit(program("good.py"), job_id="same").result(timeout=60).to_dict()
    cli_path = os.environ.get("GENESIS_CLI")
    if not cli_path:
        pytest.skip("the CLI was not built")
    out = subprocess.run([cli_path, "--config-dir", str(tree / "configs"), "--json", "--quiet"], cwd=tree,
                         capture_output=True, text=True, timeout=120)
    cli_keys = list(json.loads(out.stdout.splitlines()[0]).keys())
    assert list(d.keys()) == cli_keys


def test_futures_from_eight_threads(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    with gl.Launcher(config) as launcher:
        futures = []
        lock = threading.Lock()

        def submit_some(t):
            for i in range(3):
                f = launcher.submit(program("good.py"), job_id=f"t{t}-{i}")
                with lock:
                    futures.append(f)

        threads = [threading.Thread(target=submit_some, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [f.result(timeout=120) for f in futures]
    assert len(results) == 24
    assert {r.job_id for r in results} == {f"t{t}-{i}" for t in range(8) for i in range(3)}
    assert all(r.succeeded for r in results)


def test_submit_never_blocks_on_max_parallel_jobs(tree):
    config = gl.load_config(tree / "configs", ["evo_config.max_parallel_jobs=1"], working_dir=tree)
    with gl.Launcher(config) as launcher:
        first = launcher.submit(program("good.py"), evaluator=evaluator("sleep_pid.py"), job_id="blocker")
        wait_for((tree / "results" / "blocker" / "evaluator.pid").exists, what="the blocker's start")
        # The only slot is taken for 600 s: submit() returning at all is the point.
        queued = [launcher.submit(program("good.py"), job_id=f"q{i}") for i in range(5)]
        wait_for(lambda: launcher.usage()["queued"] == 5, what="five queued jobs")
        first.cancel()
        assert all(f.result(timeout=60).succeeded for f in queued)


def test_future_cancel_stops_a_running_job(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    with gl.Launcher(config) as launcher:
        future = launcher.submit(program("good.py"), evaluator=evaluator("sleep_pid.py"), job_id="sleeper")
        pid_file = tree / "results" / "sleeper" / "evaluator.pid"
        wait_for(pid_file.exists, what="the evaluator's pid file")
        pid = int(pid_file.read_text())
        assert future.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=1)
        wait_for(lambda: not process_alive(pid), what="the cancelled evaluator's end")
        wait_for(lambda: launcher.usage()["finished"] == 1, what="the job's end")


def test_timeout_per_job(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    with gl.Launcher(config) as launcher:
        result = launcher.submit(program("good.py"), evaluator=evaluator("sleep_pid.py"), timeout=0.5).result(60)
    assert result.outcome == "timeout"
    assert not result.succeeded


def test_a_raising_line_callback_is_logged_and_the_job_goes_on(tree, caplog):
    config = gl.load_config(tree / "configs", working_dir=tree)
    lines = []

    def bad(line):
        lines.append(line)
        raise RuntimeError("callback failure")

    with caplog.at_level(logging.ERROR, logger="genesis_launch"):
        with gl.Launcher(config) as launcher:
            result = launcher.submit(program("good.py"), on_stdout=bad, job_id="cb").result(timeout=60)
            again = launcher.submit(program("good.py")).result(timeout=60)
    assert result.succeeded and again.succeeded
    assert "hello stdout" in lines
    assert "callback failure" in caplog.text and "cb" in caplog.text


def test_extra_args_and_env_reach_the_evaluator(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    with gl.Launcher(config) as launcher:
        r = launcher.submit(program("good.py"), extra_args={"flag": True, "n": 3},
                            env={"GENESIS_TEST_VAR": "from-python"}).result(timeout=60)
    assert '"--flag", "--n", "3"' in r.stdout
    assert '"GENESIS_TEST_VAR": "from-python"' in r.stdout


def test_a_launcher_that_cannot_start_says_why(tree, monkeypatch):
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    config = gl.load_config(tree / "configs", ["evo_config.job_type=e2b"], working_dir=tree)
    with pytest.raises(gl.LaunchError, match="E2B_API_KEY is not set"):
        gl.Launcher(config)


def test_submit_after_shutdown_is_refused(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)
    launcher = gl.Launcher(config)
    launcher.shutdown()
    with pytest.raises(gl.LaunchError):
        launcher.submit(program("good.py"))


# ---- asyncio ---------------------------------------------------------------------------------

def test_asyncio_gather_runs_concurrently_on_one_launcher_thread(tree):
    # Each job records when it ran; with 8 slots they must overlap.
    probe = tree / "span.py"
    probe.write_text(textwrap.dedent("""\
        import argparse, json, os, time
        p = argparse.ArgumentParser(); p.add_argument("--program_path"); p.add_argument("--results_dir")
        a = p.parse_args(); os.makedirs(a.results_dir, exist_ok=True)
        start = time.time(); time.sleep(0.3)
        json.dump({"combined_score": 1.0, "public": {"start": start, "end": time.time()}},
                  open(os.path.join(a.results_dir, "metrics.json"), "w"))
        json.dump({"correct": True, "error": None}, open(os.path.join(a.results_dir, "correct.json"), "w"))
        """))
    config = gl.load_config(tree / "configs", ["evo_config.max_parallel_jobs=8"], working_dir=tree)

    async def main():
        with gl.Launcher(config, threads=1) as launcher:
            return await asyncio.gather(*(launcher.evaluate(program("good.py"), evaluator=probe, job_id=f"a{i}")
                                          for i in range(16)))

    results = asyncio.run(main())
    assert all(r.succeeded for r in results)
    spans = sorted((r.metrics["public"]["start"], r.metrics["public"]["end"]) for r in results)
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most >= 2, f"no two evaluations overlapped: {spans}"


def test_cancelling_the_task_cancels_the_job(tree):
    config = gl.load_config(tree / "configs", working_dir=tree)

    async def main():
        with gl.Launcher(config) as launcher:
            task = asyncio.ensure_future(launcher.evaluate(program("good.py"), evaluator=evaluator("sleep_pid.py"),
                                                           job_id="task"))
            pid_file = tree / "results" / "task" / "evaluator.pid"
            while not pid_file.exists():
                await asyncio.sleep(0.02)
            pid = int(pid_file.read_text())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            while launcher.usage()["finished"] < 1:
                await asyncio.sleep(0.02)
            return pid

    pid = asyncio.run(main())
    assert not process_alive(pid)


# ---- interpreter exit and Ctrl-C --------------------------------------------------------------

def run_script(tree, body: str, **kwargs):
    script = tree / "script.py"
    script.write_text(textwrap.dedent(f"""\
        import sys, time
        import genesis_launch as gl
        config = gl.load_config({str(tree / "configs")!r}, working_dir={str(tree)!r})
        """) + textwrap.dedent(body))
    env = dict(os.environ)
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


def test_interpreter_exit_without_shutdown_cleans_up(tree):
    p = run_script(tree, f"""\
        launcher = gl.Launcher(config)
        future = launcher.submit({str(program("good.py"))!r}, evaluator={str(evaluator("sleep_pid.py"))!r}, job_id="left")
        import pathlib
        pid_file = pathlib.Path({str(tree / "results" / "left" / "evaluator.pid")!r})
        while not pid_file.exists():
            time.sleep(0.02)
        print(pid_file.read_text(), flush=True)
        # no shutdown(): the interpreter exits with a job running
        """)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    pid = int(out.strip())
    wait_for(lambda: not process_alive(pid), what="the evaluator's end after the interpreter exited")


def test_a_launcher_garbage_collected_without_shutdown_cleans_up(tree):
    import gc
    config = gl.load_config(tree / "configs", working_dir=tree)
    launcher = gl.Launcher(config)
    future = launcher.submit(program("good.py"), evaluator=evaluator("sleep_pid.py"), job_id="dropped")
    pid_file = tree / "results" / "dropped" / "evaluator.pid"
    wait_for(pid_file.exists, what="the evaluator's pid file")
    pid = int(pid_file.read_text())
    del launcher
    gc.collect()
    # Collected: its job was cancelled and its process group killed before `del` returned.
    assert not process_alive(pid)
    assert future.result(timeout=0).outcome == "cancelled"


def test_ctrl_c_while_waiting_for_a_result(tree):
    p = run_script(tree, f"""\
        launcher = gl.Launcher(config)
        future = launcher.submit({str(program("good.py"))!r}, evaluator={str(evaluator("sleep_pid.py"))!r}, job_id="wait")
        import pathlib
        pid_file = pathlib.Path({str(tree / "results" / "wait" / "evaluator.pid")!r})
        while not pid_file.exists():
            time.sleep(0.02)
        print(pid_file.read_text(), flush=True)
        future.result()
        """)
    pid = int(p.stdout.readline().strip())
    p.send_signal(signal.SIGINT)  # its next statement is future.result()
    out, err = p.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    assert p.returncode != 0
    wait_for(lambda: not process_alive(pid), what="the evaluator's end after Ctrl-C")
