#!/usr/bin/env python3
"""Python-side cost of an evaluation: the genesis_launch package against the C++ API, on the
same E2B emulator in bench mode (instant commands, fixed result files).

    PYTHONPATH=build/python python3 bench/python_overhead.py --build-dir build [--jobs 500] [--in-flight 100] [--rounds 3]

Both clients run the same lifecycles on one launcher thread: the C++ side is genesis_bench_e2b
(its client CPU per lifecycle), the Python side this process (its whole CPU per lifecycle:
the launcher's thread plus submit(), the result callback and the JobResult). The difference
is what Python adds per evaluation. Rounds alternate; medians are printed, with the range.
"""
import argparse
import concurrent.futures
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start_emulator(path: Path) -> tuple:
    process = subprocess.Popen([str(path), "--port", "0", "--bench"], stdout=subprocess.PIPE, text=True)
    ready = json.loads(process.stdout.readline())
    return process, ready["api_url"], ready["api_key"]


def cpp_round(bench: Path, url: str, key: str, jobs: int, in_flight: int) -> float:
    out = subprocess.run([str(bench), "--url", url, "--api-key", key, "--jobs", str(jobs), "--in-flight",
                          str(in_flight), "--json"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if report["jobs_ok"] != jobs:
        raise SystemExit(f"genesis_bench_e2b: {report['jobs_failed']} jobs failed: {report['errors'][:3]}")
    return float(report["cpu_ms_per_lifecycle"])


def python_round(gl, folder: Path, url: str, key: str, jobs: int, in_flight: int) -> tuple:
    """(process CPU ms per job, Python-side CPU us per job): the second is submit() on this
    thread plus, replayed here on the same results, what the result callback does (the
    JobResult and the future) -- the work Python adds to the C++ lifecycle."""
    os.environ.update(E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=key)
    config = gl.load_config(folder / "configs", [f"evo_config.max_parallel_jobs={in_flight}"], working_dir=folder)
    with gl.Launcher(config) as launcher:
        start = cpu_seconds()
        submit_start = time.thread_time()
        futures = [launcher.submit(folder / "program.py", results_dir=folder / "results" / f"j{i}") for i in range(jobs)]
        submit_cpu = time.thread_time() - submit_start
        results = [f.result() for f in futures]
        used = cpu_seconds() - start
    failed = [r for r in results if r.outcome != "ok"]
    if failed:
        raise SystemExit(f"python: {len(failed)} jobs failed: {failed[0].diagnostic}")
    texts = [json.dumps(r.to_dict()) for r in results]
    replay_start = time.thread_time()
    for text in texts:
        f = concurrent.futures.Future()
        f.set_result(gl.JobResult._from_native(text, b"evaluator\n", b""))
    replay_cpu = time.thread_time() - replay_start
    return used * 1000.0 / jobs, (submit_cpu + replay_cpu) * 1e6 / jobs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build")
    p.add_argument("--jobs", type=int, default=500)
    p.add_argument("--in-flight", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true", help="one JSON object instead of the text report")
    a = p.parse_args()
    build = Path(a.build_dir).resolve()
    sys.path.insert(0, str(build / "python"))
    import genesis_launch as gl  # noqa: E402

    emulator_path = build / "tests" / "e2b_emulator" / "genesis_e2b_emulator"
    bench = build / "bench" / "genesis_bench_e2b"
    for needed in (emulator_path, bench):
        if not needed.exists():
            raise SystemExit(f"{needed} not found: build the emulator and the benchmarks (GENESIS_LAUNCH_BUILD_BENCH)")
    emulator, url, key = start_emulator(emulator_path)
    try:
        with tempfile.TemporaryDirectory(prefix="genesis-python-overhead-") as tmp:
            folder = Path(tmp)
            (folder / "configs").mkdir()
            (folder / "program.py").write_text("print('candidate')\n")
            (folder / "evaluate.py").write_text("print('evaluator')\n")
            (folder / "configs" / "config.yaml").write_text(json.dumps({
                "results_dir": str(folder / "results"),
                "evo_config": {"job_type": "e2b"},
                "job_config": {"eval_program_path": str(folder / "evaluate.py"), "timeout": 60,
                               "dependencies": [], "create_rate": 1e9},
            }))
            cpp, py, side = [], [], []
            for _ in range(a.rounds):
                cpp.append(cpp_round(bench, url, key, a.jobs, a.in_flight))
                whole, python_side = python_round(gl, folder, url, key, a.jobs, a.in_flight)
                py.append(whole)
                side.append(python_side)
    finally:
        emulator.terminate()
        emulator.wait()
    cpp_ms, py_ms = statistics.median(cpp), statistics.median(py)
    extra_us = (py_ms - cpp_ms) * 1000.0
    side_us = statistics.median(side)
    report = {"jobs": a.jobs, "in_flight": a.in_flight, "rounds": a.rounds,
              "cpp_cpu_ms_per_job": cpp_ms, "python_cpu_ms_per_job": py_ms, "python_extra_us_per_job": extra_us,
              "python_side_us_per_job": side_us,
              "cpp_range": [min(cpp), max(cpp)], "python_range": [min(py), max(py)]}
    if a.json:
        print(json.dumps(report))
    else:
        print(f"jobs {a.jobs}, {a.in_flight} in flight, {a.rounds} rounds (medians, range)")
        print(f"  C++ API (genesis_bench_e2b): {cpp_ms:.3f} ms CPU per job ({min(cpp):.3f}-{max(cpp):.3f})")
        print(f"  Python package:              {py_ms:.3f} ms CPU per job ({min(py):.3f}-{max(py):.3f})")
        print(f"  difference of the medians:   {extra_us:.0f} us per job (within the rounds' spread)")
        print(f"  Python-side work measured:   {side_us:.1f} us per job ({min(side):.1f}-{max(side):.1f}): "
              "submit() plus the result's JobResult and future (target: under 50 us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
