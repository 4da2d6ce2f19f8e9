"""genesis_launch from Python against the E2B emulator: hundreds of evaluations from
asyncio on one launcher thread, and cancellation that kills the sandbox."""
import asyncio
import textwrap

import pytest

import genesis_launch as gl
from conftest import program, wait_for, write_tree

SPAN_EVALUATOR = textwrap.dedent("""\
    import argparse, json, os, time
    p = argparse.ArgumentParser(); p.add_argument("--program_path"); p.add_argument("--results_dir")
    a = p.parse_args(); os.makedirs(a.results_dir, exist_ok=True)
    start = time.time(); time.sleep(float(os.environ.get("SPAN_SLEEP", "0.2")))
    json.dump({"combined_score": 1.0, "public": {"start": start, "end": time.time()}},
              open(os.path.join(a.results_dir, "metrics.json"), "w"))
    json.dump({"correct": True, "error": None}, open(os.path.join(a.results_dir, "correct.json"), "w"))
    """)


def e2b_tree(tmp_path, emulator, max_parallel: int):
    write_tree(tmp_path, job_config=f"""\
        template: base
        timeout: 120
        dependencies: []
        create_rate: 1000
        api_url: {emulator.url}
        sandbox_url: {emulator.url}
        """)
    (tmp_path / "span.py").write_text(SPAN_EVALUATOR)
    return gl.load_config(tmp_path / "configs",
                          ["evo_config.job_type=e2b", f"evo_config.max_parallel_jobs={max_parallel}",
                           f"job_config.eval_program_path={tmp_path / 'span.py'}"],
                          working_dir=tmp_path)


def test_asyncio_gather_of_200_evaluations_on_one_thread(tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("E2B_API_KEY", emulator.key)
    config = e2b_tree(tmp_path, emulator, max_parallel=50)

    async def main():
        with gl.Launcher(config, threads=1) as launcher:
            return await asyncio.gather(*(launcher.evaluate(program("good.py"), job_id=f"e{i}") for i in range(200)))

    results = asyncio.run(main())
    assert len(results) == 200
    bad = [(r.job_id, r.outcome, r.diagnostic) for r in results if not r.succeeded]
    assert not bad, bad[:5]
    assert all(r.backend == "e2b" and r.sandbox_id for r in results)
    # Overlap: evaluations in different sandboxes ran at the same time.
    spans = sorted((r.metrics["public"]["start"], r.metrics["public"]["end"]) for r in results)
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most >= 2, "no two evaluations overlapped"
    stats = emulator.stats()
    assert stats["created"] == 200 and stats["live"] == 0


def test_future_cancel_kills_the_sandbox(tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("E2B_API_KEY", emulator.key)
    config = e2b_tree(tmp_path, emulator, max_parallel=2)
    with gl.Launcher(config) as launcher:
        started = []
        future = launcher.submit(program("good.py"), env={"SPAN_SLEEP": "600"}, job_id="long",
                                 on_stdout=started.append)
        wait_for(lambda: emulator.stats()["live"] == 1, what="the sandbox")
        assert future.cancel()
        wait_for(lambda: emulator.stats()["live"] == 0, what="the sandbox's kill")
        task_result = launcher.submit(program("good.py"), job_id="after").result(timeout=120)
    assert task_result.succeeded
    stats = emulator.stats()
    assert stats["created"] == 2 and stats["killed"] == 2 and stats["live"] == 0


def test_cancelling_the_task_kills_the_sandbox(tmp_path, emulator, monkeypatch):
    monkeypatch.setenv("E2B_API_KEY", emulator.key)
    config = e2b_tree(tmp_path, emulator, max_parallel=2)

    async def main():
        with gl.Launcher(config) as launcher:
            task = asyncio.ensure_future(launcher.evaluate(program("good.py"), env={"SPAN_SLEEP": "600"}, job_id="t"))
            while emulator.stats()["live"] < 1:
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            while emulator.stats()["live"] > 0:
                await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(main(), timeout=120))
    stats = emulator.stats()
    assert stats["created"] == 1 and stats["killed"] == 1 and stats["live"] == 0
