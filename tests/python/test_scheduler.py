"""genesis_launch.scheduler driven the way Genesis's runner drives its JobScheduler:
submit, poll the status, collect the results; locally and on the E2B emulator."""
import asyncio
import json
import os
import shutil
import sys
import time

import pytest

from genesis_launch.scheduler import E2BJobConfig, JobScheduler, LocalJobConfig, SlurmCondaJobConfig
from conftest import PYTHON, evaluator, process_alive, program, wait_for


class RunningJob:
    """The runner's own record of a job: the scheduler's job in .job_id."""

    def __init__(self, job_id, results_dir):
        self.job_id = job_id
        self.results_dir = results_dir


def generation(scheduler, tmp_path, count):
    # As Genesis's runner: copy the candidate into gen_N/main.py, submit, poll, collect.
    running = []
    for n in range(count):
        gen = tmp_path / f"gen_{n}"
        gen.mkdir()
        shutil.copy(program("good.py"), gen / "main.py")
        job_id = scheduler.submit_async(str(gen / "main.py"), str(gen / "results"))
        running.append(RunningJob(job_id, str(gen / "results")))
    finished = {}
    deadline = time.monotonic() + 120
    while len(finished) < len(running) and time.monotonic() < deadline:
        for job in running:
            if str(job.job_id) not in finished and not scheduler.check_job_status(job):
                finished[str(job.job_id)] = scheduler.get_job_results(job.job_id, job.results_dir)
        time.sleep(0.02)
    assert len(finished) == len(running)
    return list(finished.values())


def check_results(results):
    for r in results:
        assert set(r) == {"correct", "metrics", "stdout_log", "stderr_log"}
        assert r["correct"] == {"correct": True, "error": None}
        assert isinstance(r["metrics"]["combined_score"], (int, float))
        assert "hello stdout" in r["stdout_log"] and "hello stderr" in r["stderr_log"]


def test_local_like_the_genesis_runner(tmp_path):
    config = LocalJobConfig(eval_program_path=str(evaluator("ok.py")), python_executable=PYTHON)
    scheduler = JobScheduler("local", config, verbose=False)
    try:
        check_results(generation(scheduler, tmp_path, 6))
        results, rtime = scheduler.run(str(program("good.py")), str(tmp_path / "single"))
        check_results([results])
        assert rtime > 0
    finally:
        scheduler.shutdown()


def test_local_jobs_use_the_calling_interpreter(tmp_path):
    probe = tmp_path / "which.py"
    probe.write_text(
        "import argparse, json, os, sys\n"
        "p = argparse.ArgumentParser(); p.add_argument('--program_path'); p.add_argument('--results_dir')\n"
        "a = p.parse_args(); os.makedirs(a.results_dir, exist_ok=True)\n"
        "json.dump({'combined_score': 1, 'exe': sys.executable}, open(os.path.join(a.results_dir, 'metrics.json'), 'w'))\n"
        "json.dump({'correct': True, 'error': None}, open(os.path.join(a.results_dir, 'correct.json'), 'w'))\n")
    scheduler = JobScheduler("local", LocalJobConfig(eval_program_path=str(probe)))
    try:
        results, _ = scheduler.run(str(program("good.py")), str(tmp_path / "r"))
    finally:
        scheduler.shutdown()
    assert results["correct"]["correct"] is True
    assert results["metrics"]["exe"] == sys.executable


def test_cancel_and_async_methods(tmp_path):
    config = LocalJobConfig(eval_program_path=str(evaluator("sleep_pid.py")), python_executable=PYTHON)
    scheduler = JobScheduler("local", config)

    async def main():
        job = await scheduler.submit_async_nonblocking(str(program("good.py")), str(tmp_path / "slow"))
        pid_file = tmp_path / "slow" / "evaluator.pid"
        while not pid_file.exists():
            await asyncio.sleep(0.02)
        assert await scheduler.check_job_status_async(RunningJob(job, str(tmp_path / "slow")))
        assert await scheduler.batch_check_status_async([job]) == [True]
        assert await scheduler.cancel_job_async(job)
        results = await scheduler.get_job_results_async(job, str(tmp_path / "slow"))
        return int(pid_file.read_text()), results, await scheduler.check_job_status_async(job)

    try:
        pid, results, running = asyncio.run(main())
    finally:
        scheduler.shutdown()
    assert not running
    assert results["correct"]["correct"] is False
    wait_for(lambda: not process_alive(pid), what="the cancelled evaluator's end")


def test_a_timeout_is_not_correct(tmp_path):
    config = LocalJobConfig(eval_program_path=str(evaluator("sleep_pid.py")), python_executable=PYTHON, time="1")
    scheduler = JobScheduler("local", config)
    try:
        results, _ = scheduler.run(str(program("good.py")), str(tmp_path / "t"))
    finally:
        scheduler.shutdown()
    assert results["correct"]["correct"] is False
    assert "time" in results["correct"]["error"]


def test_slurm_job_types_are_refused():
    with pytest.raises(ValueError, match="'local' and 'e2b'"):
        JobScheduler("slurm_conda", SlurmCondaJobConfig())


def test_e2b_like_the_genesis_runner(tmp_path, emulator, monkeypatch):
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    config = E2BJobConfig(eval_program_path=str(evaluator("ok.py")), timeout=120, dependencies=[],
                          env_vars={"GENESIS_TEST_VAR": "in-the-sandbox"})
    scheduler = JobScheduler("e2b", config)
    try:
        results = generation(scheduler, tmp_path, 4)
    finally:
        scheduler.shutdown()
    check_results(results)
    # env_vars reach the evaluator (Genesis's own E2B path loses them).
    assert all('"GENESIS_TEST_VAR": "in-the-sandbox"' in r["stdout_log"] for r in results)
    stats = emulator.stats()
    assert stats["created"] == 4 and stats["live"] == 0
