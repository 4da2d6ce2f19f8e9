"""A drop-in for the JobScheduler of Genesis (genesis/launch/scheduler.py) and ShinkaEvolve
(shinka/launch/scheduler.py): the same classes, constructor signatures, fields and methods,
running on genesis-launch. The migration is one import line in the engine's runner:

    -from genesis.launch import JobScheduler, LocalJobConfig, E2BJobConfig
    +from genesis_launch.scheduler import JobScheduler, LocalJobConfig, E2BJobConfig

Differences, on purpose: submit_async never blocks (theirs waits for an E2B sandbox to be
created); E2B env_vars reach the evaluator; no process or sandbox outlives shutdown().
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from . import Config, JobResult, Launcher, load_config

__all__ = [
    "E2BJobConfig",
    "JobConfig",
    "JobScheduler",
    "LocalJobConfig",
    "ScheduledJob",
    "SlurmCondaJobConfig",
    "SlurmDockerJobConfig",
]


@dataclass
class JobConfig:
    """Base job configuration (both engines' fields)."""

    eval_program_path: Optional[str] = "evaluate.py"
    extra_cmd_args: Dict[str, Any] = field(default_factory=dict)
    # ShinkaEvolve: SHINKA_EVAL_VERBOSE for the evaluator (None: left unset).
    eval_verbose: Optional[bool] = None
    # ShinkaEvolve: caps numeric libraries' threads per evaluation (None: unset).
    numeric_threads_per_job: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class LocalJobConfig(JobConfig):
    time: Optional[str] = None
    conda_env: Optional[str] = None
    activate_script: Optional[str] = None
    python_executable: Optional[str] = None


@dataclass
class E2BJobConfig(JobConfig):
    template: str = "base"
    timeout: int = 300
    dependencies: Optional[List[str]] = None
    additional_files: Optional[Dict[str, str]] = None
    env_vars: Optional[Dict[str, str]] = None

    def __post_init__(self) -> None:
        if self.dependencies is None:
            self.dependencies = []
        if self.additional_files is None:
            self.additional_files = {}
        if self.env_vars is None:
            self.env_vars = {}


@dataclass
class SlurmDockerJobConfig(JobConfig):
    """Accepted so that imports keep working; genesis-launch does not run Slurm jobs."""

    image: str = "ubuntu:latest"
    image_tar_path: Optional[str] = None
    docker_flags: str = ""
    partition: str = "gpu"
    time: str = "01:00:00"
    cpus: int = 1
    gpus: int = 1
    mem: Optional[str] = "8G"


@dataclass
class SlurmCondaJobConfig(JobConfig):
    """Accepted so that imports keep working; genesis-launch does not run Slurm jobs."""

    conda_env: str = ""
    activate_script: Optional[str] = None
    modules: Optional[List[str]] = None
    partition: str = "gpu"
    time: str = "01:00:00"
    cpus: int = 1
    gpus: int = 1
    mem: Optional[str] = "8G"


JobConfigType = Union[LocalJobConfig, E2BJobConfig, SlurmDockerJobConfig, SlurmCondaJobConfig]


class ScheduledJob:
    """What submit_async returns (their job id): pass it, or any object holding it in
    `.job_id`, to check_job_status, get_job_results and cancel_job_async."""

    def __init__(self, future: "Any", results_dir: str) -> None:
        self.future = future
        self.results_dir = results_dir
        self.job_id: str = future.job_id

    def __repr__(self) -> str:
        return f"ScheduledJob({self.job_id!r}, done={self.future.done()})"

    def __str__(self) -> str:
        return self.job_id


def _handle(job: Any) -> ScheduledJob:
    if isinstance(job, ScheduledJob):
        return job
    inner = getattr(job, "job_id", None)
    if isinstance(inner, ScheduledJob):
        return inner
    raise TypeError(f"not a job of this scheduler: {job!r}")


def _job_config_tree(job_type: str, config: JobConfigType) -> Dict[str, Any]:
    job: Dict[str, Any] = {"eval_program_path": config.eval_program_path or "evaluate.py",
                           "extra_cmd_args": dict(config.extra_cmd_args or {})}
    if config.eval_verbose is not None:
        job["eval_verbose"] = bool(config.eval_verbose)
    if config.numeric_threads_per_job is not None:
        job["numeric_threads_per_job"] = int(config.numeric_threads_per_job)
    if isinstance(config, LocalJobConfig):
        # The calling interpreter, as theirs: python_executable, else sys.executable.
        job["python"] = config.python_executable or sys.executable or "python3"
        job["time"] = config.time
        job["conda_env"] = config.conda_env
        job["activate_script"] = config.activate_script
    elif isinstance(config, E2BJobConfig):
        job.update(template=config.template, timeout=config.timeout, dependencies=list(config.dependencies or []),
                   additional_files=dict(config.additional_files or {}), env_vars=dict(config.env_vars or {}))
    return job


class JobScheduler:
    def __init__(self, job_type: str, config: JobConfigType, verbose: bool = False, max_workers: int = 4) -> None:
        if job_type == "slurm_env":
            job_type = "slurm_conda"
        if job_type not in ("local", "e2b"):
            raise ValueError(f"Unknown job type: {job_type}. genesis-launch runs 'local' and 'e2b' jobs")
        self.job_type = job_type
        self.config = config
        self.verbose = verbose
        self.max_workers = max_workers  # kept for compatibility; no thread pool is needed
        tree = {
            "evo_config": {"job_type": job_type, "max_parallel_jobs": 100000},
            "job_config": _job_config_tree(job_type, config),
        }
        # The engine decides how many jobs run at once; the launcher queues none of them.
        with tempfile.TemporaryDirectory(prefix="genesis-launch-scheduler-") as folder:
            (Path(folder) / "config.yaml").write_text(json.dumps(tree))
            self._config: Config = load_config(folder, working_dir=os.getcwd())
        self._launcher = Launcher(self._config)

    # ---- synchronous -----------------------------------------------------------------------

    def run(self, exec_fname_t: str, results_dir_t: str) -> Tuple[Dict[str, Any], float]:
        start = time.time()
        job = self.submit_async(exec_fname_t, results_dir_t)
        results = self.get_job_results(job, results_dir_t)
        return results, time.time() - start

    def submit_async(self, exec_fname_t: str, results_dir_t: str) -> ScheduledJob:
        """Starts the evaluation and returns at once."""
        future = self._launcher.submit(exec_fname_t, results_dir=results_dir_t)
        return ScheduledJob(future, results_dir_t)

    def check_job_status(self, job: Any) -> bool:
        """True while the job is running (or queued)."""
        return not _handle(job).future.done()

    def get_job_results(self, job_id: Any, results_dir: str) -> Optional[Dict[str, Any]]:
        """Waits for the job and returns its results in the engines' shape:
        {"correct": {...}, "metrics": {...}, "stdout_log": str, "stderr_log": str}."""
        handle = _handle(job_id)
        try:
            result: Optional[JobResult] = handle.future.result()
        except BaseException as e:  # cancelled, or the launcher went away
            if isinstance(e, KeyboardInterrupt):
                raise
            result = None
        return _engine_results(results_dir or handle.results_dir, result)

    # ---- asyncio -----------------------------------------------------------------------------

    async def submit_async_nonblocking(self, exec_fname_t: str, results_dir_t: str) -> ScheduledJob:
        return self.submit_async(exec_fname_t, results_dir_t)

    async def check_job_status_async(self, job: Any) -> bool:
        return self.check_job_status(job)

    async def get_job_results_async(self, job_id: Any, results_dir: str) -> Optional[Dict[str, Any]]:
        handle = _handle(job_id)
        try:
            result: Optional[JobResult] = await asyncio.wrap_future(handle.future)
        except asyncio.CancelledError:
            if handle.future.cancelled():
                result = None
            else:
                raise
        return _engine_results(results_dir or handle.results_dir, result)

    async def batch_check_status_async(self, jobs: List[Any]) -> List[bool]:
        out: List[Any] = []
        for job in jobs:
            try:
                out.append(self.check_job_status(job))
            except Exception as e:  # noqa: BLE001 - theirs returns exceptions in place
                out.append(e)
        return out

    async def cancel_job_async(self, job_id: Any) -> bool:
        """Cancels the job (a running one too: its process group or sandbox is killed)."""
        handle = _handle(job_id)
        if handle.future.done():
            return False
        return handle.future.cancel()

    def shutdown(self) -> None:
        """Cancels what is left and waits until every process or sandbox is cleaned up."""
        self._launcher.shutdown(wait=True)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _engine_results(results_dir: str, result: Optional[JobResult]) -> Dict[str, Any]:
    folder = Path(results_dir)
    out: Dict[str, Any] = {"correct": {"correct": False}, "metrics": {}}
    out["stdout_log"] = _read_text(folder / "job_log.out")
    out["stderr_log"] = _read_text(folder / "job_log.err")
    if result is None:
        out["correct"] = {"correct": False, "error": "the job was cancelled"}
        return out
    out["metrics"] = dict(result.metrics)
    correct_file = folder / "correct.json"
    if correct_file.exists():
        try:
            out["correct"] = json.loads(correct_file.read_text())
        except (OSError, ValueError):
            out["correct"] = {"correct": False, "error": result.error}
    else:
        out["correct"] = {"correct": False, "error": result.error or result.diagnostic}
    if not result.correct and isinstance(out["correct"], dict):
        # A timeout or crash is never correct, whatever the evaluator wrote before.
        out["correct"]["correct"] = False
        if result.outcome != "ok" and not out["correct"].get("error"):
            out["correct"]["error"] = result.diagnostic or str(result.outcome)
    return out
