"""genesis_launch: evaluate candidate programs for Genesis / ShinkaEvolve from Python.

    import genesis_launch as gl

    config = gl.load_config("configs", ["variant=circle_packing_example"])
    with gl.Launcher(config) as launcher:
        future = launcher.submit("examples/circle_packing/initial.py")   # concurrent.futures.Future
        result = future.result()                                        # a JobResult
        print(result.outcome, result.correct, result.combined_score)

    # asyncio: results complete on the caller's loop; cancelling the task cancels the job
    results = await asyncio.gather(*(launcher.evaluate(p) for p in programs))

The launcher runs the library's C++ core on its own I/O thread(s): no subprocess per batch,
no thread per job. See docs/python.md.
"""

from __future__ import annotations

import asyncio
import atexit
import collections.abc
import concurrent.futures
import enum
import json
import logging
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _native

__all__ = [
    "Config",
    "ConfigError",
    "JobResult",
    "LaunchError",
    "Launcher",
    "Outcome",
    "Timings",
    "load_config",
    "__version__",
]

__version__: str = _native.version

logger = logging.getLogger("genesis_launch")

PathLike = Union[str, "os.PathLike[str]"]


# ---- errors ------------------------------------------------------------------------------

_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?:(?P<key>[A-Za-z0-9_.@/\-]+): )?")
_OVERRIDE = re.compile(r"^command line override '(?P<text>.*?)': (?:(?P<key>[A-Za-z0-9_.@/\-]+): |key '(?P<named>[^']+)')?")


class ConfigError(ValueError):
    """The configuration is wrong. `str(e)` is the one-line message the CLI prints;
    `file`, `line` and `key` say where, when known (`None` otherwise); `override` is the
    command-line override at fault, if one is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.file: Optional[str] = None
        self.line: Optional[int] = None
        self.key: Optional[str] = None
        self.override: Optional[str] = None
        m = _OVERRIDE.match(message)
        if m:
            self.override = m.group("text")
            self.key = m.group("key") or m.group("named")
            return
        m = _LOCATION.match(message)
        if m:
            self.file = m.group("file")
            self.line = int(m.group("line"))
            self.key = m.group("key")


class LaunchError(RuntimeError):
    """The launcher could not be created or used (not a configuration mistake)."""


# ---- config ------------------------------------------------------------------------------


class Config(collections.abc.Mapping):
    """A loaded configuration: a read-only dict view of the merged tree (every key, the
    engine's included), plus what the launcher read from it."""

    def __init__(self, native: "_native.NativeConfig") -> None:
        self._native = native
        self._tree: Dict[str, Any] = native.tree()

    def __getitem__(self, key: str) -> Any:
        return self._tree[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tree)

    def __len__(self) -> int:
        return len(self._tree)

    def __repr__(self) -> str:
        return f"Config(job_type={self.job_type!r}, sources={[Path(s).name for s in self.sources]!r})"

    def to_dict(self) -> Dict[str, Any]:
        """A deep copy of the merged tree."""
        return json.loads(json.dumps(self._tree))

    @property
    def job_type(self) -> str:
        return self._native.job_type

    @property
    def max_parallel_jobs(self) -> int:
        return self._native.max_parallel_jobs

    @property
    def init_program_path(self) -> Optional[Path]:
        path = self._native.init_program_path
        return Path(path) if path else None

    @property
    def eval_program_path(self) -> Path:
        return Path(self._native.eval_program_path)

    @property
    def results_dir(self) -> Path:
        return Path(self._native.results_dir)

    @property
    def programs(self) -> List[Path]:
        return [Path(p) for p in self._native.programs]

    @property
    def sources(self) -> List[Path]:
        return [Path(p) for p in self._native.sources]

    @property
    def choices(self) -> Dict[str, str]:
        return dict(self._native.choices)

    @property
    def notes(self) -> List[str]:
        return list(self._native.notes)

    @property
    def dotenv_file(self) -> Optional[Path]:
        path = self._native.dotenv_file
        return Path(path) if path else None


def load_config(
    config_dir: PathLike = "configs",
    overrides: Sequence[str] = (),
    env_file: Optional[PathLike] = None,
    *,
    working_dir: Optional[PathLike] = None,
) -> Config:
    """Loads a config tree exactly as the CLI does (Hydra composition, overrides such as
    ``variant=x`` or ``job_config.timeout=600``). Raises ConfigError with file, line and key.
    `env_file` is read for credentials after the environment; without it the nearest
    ``.env`` (working directory, then its parents) is."""
    if isinstance(overrides, str):
        raise TypeError("overrides must be a list of strings, e.g. ['variant=x']")
    try:
        native = _native.load_config(
            os.fspath(config_dir),
            [str(o) for o in overrides],
            None if working_dir is None else os.fspath(working_dir),
            None if env_file is None else os.fspath(env_file),
        )
    except _native.NativeConfigError as e:
        raise ConfigError(str(e)) from None
    return Config(native)


# ---- results -----------------------------------------------------------------------------


class Outcome(str, enum.Enum):
    """How a job ended (a str: ``result.outcome == "ok"`` works)."""

    OK = "ok"
    CANDIDATE_FAILED = "candidate_failed"
    TIMEOUT = "timeout"
    SETUP_FAILED = "setup_failed"
    INFRA_ERROR = "infra_error"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each phase; phases a backend does not have are 0."""

    queued: float = 0.0
    create: float = 0.0
    setup: float = 0.0
    run: float = 0.0
    download: float = 0.0
    cleanup: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class JobResult:
    """One finished job. `to_dict()` is the CLI's ``--json`` object."""

    job_id: str
    program: Path
    outcome: Outcome
    correct: bool
    error: Optional[str]
    exit_code: Optional[int]
    signal: Optional[int]
    combined_score: Optional[float]
    metrics: Dict[str, Any]
    results_dir: Path
    result_files: List[Path]
    timings: Timings
    diagnostic: Optional[str]
    warnings: List[str]
    backend: str
    sandbox_id: Optional[str]
    sandbox_seconds: Optional[float]
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    _json: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def succeeded(self) -> bool:
        """The evaluator ran, exited 0, and said the candidate is correct."""
        return self.outcome is Outcome.OK and self.correct

    def to_dict(self) -> Dict[str, Any]:
        return json.loads(json.dumps(self._json))

    @classmethod
    def _from_native(cls, text: str, stdout: bytes, stderr: bytes) -> "JobResult":
        d = json.loads(text)
        t = d["timings"]
        return cls(
            job_id=d["job_id"],
            program=Path(d["program"]),
            outcome=Outcome(d["outcome"]),
            correct=d["correct"],
            error=d["error"],
            exit_code=d["exit_code"],
            signal=d["signal"],
            combined_score=d["combined_score"],
            metrics=d["metrics"],
            results_dir=Path(d["results_dir"]),
            result_files=[Path(f) for f in d["result_files"]],
            timings=Timings(**{k[:-2]: v for k, v in t.items()}),
            diagnostic=d["diagnostic"],
            warnings=list(d["warnings"]),
            backend=d["backend"],
            sandbox_id=d["sandbox_id"],
            sandbox_seconds=d["sandbox_seconds"],
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            stdout_truncated=d["stdout_truncated"],
            stderr_truncated=d["stderr_truncated"],
            _json=d,
        )


# ---- the launcher --------------------------------------------------------------------------


class _JobFuture(concurrent.futures.Future):
    """A Future whose cancel() also stops the job when it is already running."""

    def __init__(self) -> None:
        super().__init__()
        self._cancel_job: Optional[Callable[[], None]] = None

    def cancel(self) -> bool:
        cancelled = super().cancel()
        if cancelled and self._cancel_job is not None:
            self._cancel_job()
        return cancelled


# Every native launcher not shut down yet (futures may keep one alive after its Launcher).
_live_natives: "weakref.WeakSet[_native.NativeLauncher]" = weakref.WeakSet()


def _shutdown_all() -> None:
    # Before the interpreter goes: no I/O thread may call into Python after this.
    for native in list(_live_natives):
        try:
            native.shutdown()
        except Exception:  # noqa: BLE001 - exiting anyway
            logger.exception("genesis_launch: shutting a launcher down at exit failed")


atexit.register(_shutdown_all)


def _line_callback(callback: Optional[Callable[[str], Any]], job_id: str) -> Optional[Callable[[bytes], None]]:
    if callback is None:
        return None

    def deliver(line: bytes) -> None:
        try:
            callback(line.decode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - a callback's failure never stops the job
            logger.exception("genesis_launch: the line callback of job %s raised", job_id)

    return deliver


class Launcher:
    """Runs evaluations with the configuration's backend (local subprocesses or E2B
    sandboxes) on `threads` I/O threads of its own. Thread-safe. Use as a context manager,
    or call shutdown(); a launcher that is garbage-collected, or still alive at interpreter
    exit, is shut down then (its jobs cancelled, their processes or sandboxes killed)."""

    def __init__(self, config: Config, threads: int = 1) -> None:
        if not isinstance(config, Config):
            raise TypeError("Launcher needs a Config (genesis_launch.load_config(...))")
        try:
            self._native = _native.NativeLauncher(config._native, threads)
        except _native.NativeConfigError as e:
            raise ConfigError(str(e)) from None
        except _native.NativeLaunchError as e:
            raise LaunchError(str(e)) from None
        self.config = config
        self._lock = threading.Lock()
        self._closed = False
        _live_natives.add(self._native)

    def __enter__(self) -> "Launcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(wait=True)

    def __del__(self) -> None:
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()  # cancels what is left and waits for the cleanup

    def _start(
        self,
        program_path: PathLike,
        done: Callable[[str, bytes, bytes], None],
        results_dir: Optional[PathLike],
        evaluator: Optional[PathLike],
        extra_args: Optional[Mapping[str, Any]],
        timeout: Optional[float],
        env: Optional[Mapping[str, str]],
        on_stdout: Optional[Callable[[str], Any]],
        on_stderr: Optional[Callable[[str], Any]],
        job_id: Optional[str],
    ) -> str:
        with self._lock:
            if self._closed:
                raise LaunchError("the launcher is shut down")
        wanted_id = job_id or ""
        return self._native.submit(
            os.fspath(program_path),
            "" if results_dir is None else os.fspath(results_dir),
            "" if evaluator is None else os.fspath(evaluator),
            "" if not extra_args else json.dumps(dict(extra_args)),
            None if timeout is None else float(timeout),
            {str(k): str(v) for k, v in (env or {}).items()},
            _line_callback(on_stdout, wanted_id or "?"),
            _line_callback(on_stderr, wanted_id or "?"),
            wanted_id,
            done,
        )

    def submit(
        self,
        program_path: PathLike,
        *,
        results_dir: Optional[PathLike] = None,
        evaluator: Optional[PathLike] = None,
        extra_args: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
        job_id: Optional[str] = None,
    ) -> "concurrent.futures.Future[JobResult]":
        """Queues one evaluation and returns at once (never waits for a free slot).
        The future's result is a JobResult; its cancel() stops the job even when it is
        running. `timeout` is in seconds; `results_dir` defaults to
        <config results_dir>/<job_id>; line callbacks get each line of output."""
        future = _JobFuture()

        def done(text: str, stdout: bytes, stderr: bytes) -> None:
            try:
                result = JobResult._from_native(text, stdout, stderr)
            except Exception as e:  # noqa: BLE001
                if not future.done():
                    future.set_exception(e)
                return
            if not future.done():
                future.set_result(result)

        real_id = self._start(program_path, done, results_dir, evaluator, extra_args, timeout, env, on_stdout,
                              on_stderr, job_id)
        future.job_id = real_id  # type: ignore[attr-defined]
        native = self._native  # not self: a future must not keep the Launcher alive
        future._cancel_job = lambda: native.cancel(real_id)
        return future

    async def evaluate(
        self,
        program_path: PathLike,
        *,
        results_dir: Optional[PathLike] = None,
        evaluator: Optional[PathLike] = None,
        extra_args: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
        job_id: Optional[str] = None,
    ) -> JobResult:
        """submit() for asyncio: completes on the running loop; cancelling the awaiting
        task cancels the job."""
        loop = asyncio.get_running_loop()
        waiter: "asyncio.Future[JobResult]" = loop.create_future()

        def settle(text: str, stdout: bytes, stderr: bytes) -> None:
            if waiter.done():
                return
            try:
                waiter.set_result(JobResult._from_native(text, stdout, stderr))
            except Exception as e:  # noqa: BLE001
                waiter.set_exception(e)

        def done(text: str, stdout: bytes, stderr: bytes) -> None:
            try:
                loop.call_soon_threadsafe(settle, text, stdout, stderr)
            except RuntimeError:  # the loop is closed: nobody awaits this any more
                pass

        real_id = self._start(program_path, done, results_dir, evaluator, extra_args, timeout, env, on_stdout,
                              on_stderr, job_id)
        try:
            return await waiter
        except asyncio.CancelledError:
            self._native.cancel(real_id)
            raise

    def cancel(self, job_id: str) -> None:
        """Cancels a queued or running job (its result's outcome is `cancelled`)."""
        self._native.cancel(job_id)

    def cancel_all(self) -> None:
        self._native.cancel_all()

    def usage(self) -> Dict[str, int]:
        """Counts: submitted, queued, running, finished, rejected."""
        return dict(self._native.usage())

    def shutdown(self, wait: bool = True) -> None:
        """Stops accepting jobs, cancels every job, and (with wait) returns once every
        process or sandbox is cleaned up. Without wait the cleanup finishes on a thread."""
        with self._lock:
            self._closed = True
        if wait:
            self._native.shutdown()
        else:
            threading.Thread(target=self._native.shutdown, name="genesis_launch-shutdown", daemon=False).start()
