#!/usr/bin/python3
"""bench_report.py - helper of bench/run_bench.sh (standard library only).

  bench_report.py ready EMULATOR_OUT
      the emulator's JSON ready line as shell assignments (ready_api_url, ready_api_key,
      ready_port, ready_pid); exit 1 when there is none.
  bench_report.py record RESULTS CLIENT_JSON SIDE RC STDERR_FILE TRANSPORT JOBS C L MODE FSTYPE
      checks one client's run (MODE: tmpfs, disk or paced: where the results folders were,
      FSTYPE that folder's file system type) (exit status 0, its JSON object, every job ok), appends
      it to RESULTS (JSON lines) and prints a progress line; exit 1 when it failed.
  bench_report.py report RESULTS [--local FILE] [--local-note TEXT] [--json-out FILE]
                                 [--command TEXT] [--jobs N] [--sdk-version V]
      prints every run, the issue's table (genesis-launch vs the SDK, side by side,
      with ratios) and the local comparison; writes all of it as JSON.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

SIDES = ("genesis-launch", "sdk")
SIDE_NAMES = {"genesis-launch": "genesis-launch", "sdk": "E2B JS SDK"}


def load_avg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def cmd_ready(path):
    try:
        with open(path, encoding="utf-8") as f:
            ready = json.loads(f.readline())
        fields = {k: ready[k] for k in ("api_url", "api_key", "port", "pid")}
    except (OSError, ValueError, KeyError, TypeError):
        return 1
    for key, value in fields.items():
        print(f"ready_{key}={shlex.quote(str(value))}")
    return 0


def cmd_record(results, client_json, side, rc, stderr_file, transport, jobs, c, latency, mode, fstype):
    rc, jobs, c, latency = int(rc), int(jobs), int(c), int(latency)
    record = {"side": side, "transport": transport, "jobs": jobs, "in_flight": c, "latency_ms": latency,
              "mode": mode, "results_fs": fstype, "exit_status": rc, "load_1min_after": load_avg()}
    problems = []
    try:
        with open(client_json, encoding="utf-8") as f:
            text = f.read().strip()
        data = json.loads(text.splitlines()[-1]) if text else None
        if not isinstance(data, dict):
            raise ValueError("no JSON object")
        record["result"] = data
    except (OSError, ValueError) as err:
        data = None
        problems.append(f"no result ({err})")
    if rc != 0:
        problems.append(f"exit status {rc}")
    if data is not None:
        if data.get("jobs_ok") != jobs or data.get("jobs_failed") != 0:
            problems.append(f"{data.get('jobs_ok')} of {jobs} jobs ok")
        for e in data.get("errors") or []:
            problems.append(str(e))
    if problems:
        try:
            with open(stderr_file, encoding="utf-8", errors="replace") as f:
                tail = f.read().strip().splitlines()[-5:]
        except OSError:
            tail = []
        record["failed"] = True
        record["problems"] = problems + tail
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")

    label = f"[bench]   {SIDE_NAMES[side]}:"
    if problems:
        print(f"{label} FAILED: {'; '.join(problems)}", file=sys.stderr)
        return 1
    d = data
    woi = "n/a" if d.get("wall_over_ideal") is None else f"{d['wall_over_ideal']:.2f}"
    print(f"{label} {d['jobs_ok']}/{jobs} ok, wall {d['wall_s']:.2f} s (ideal {d['ideal_s']:.2f} s, "
          f"wall/ideal {woi}), CPU {d['cpu_ms_per_lifecycle']:.3f} ms/lifecycle "
          f"(user {d['cpu_user_ms_per_lifecycle']:.3f}, system {d['cpu_system_ms_per_lifecycle']:.3f}), "
          f"peak RSS {d['peak_rss_mib']:.1f} MiB")
    per = ", ".join(f"{k} {v / jobs:g}" for k, v in sorted(d.get("requests_by_endpoint", {}).items()))
    print(f"{label} per lifecycle: {d['requests_per_lifecycle']:g} requests ({per}), "
          f"{d['connections_per_lifecycle']:g} connections, {d['tls_handshakes_per_lifecycle']:g} TLS handshakes, "
          f"emulator CPU {d['emulator_cpu_ms_per_lifecycle']:.3f} ms")
    sys.stdout.flush()
    return 0


def fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": mem, "kernel": platform.release(),
            "load_1min_at_report": load_avg()}


# Round trips per lifecycle: the SDK's 6 requests go one after the other; genesis-launch
# sends 7 in 5 round trips (the two result files are read while the folder is listed).
ROUND_TRIPS = {"genesis-launch": 5, "sdk": 6}
MODE_NAMES = {"tmpfs": "results on tmpfs", "disk": "results on disk", "paced": "default create_rate, results on disk"}


def own_ideal(side, jobs, c, latency_ms, create_rate):
    """The side's own ideal wall time: its round trips x L x ceil(N / C); with a create
    rate, the last create starts (N - 1) / rate after the first (when C >= N)."""
    one = ROUND_TRIPS[side] * latency_ms / 1000.0
    if create_rate:
        return (jobs - 1) / create_rate + one
    return one * -(-jobs // c)


def targets_table(runs):
    """The targets: genesis-launch and the SDK side by side, medians and ranges."""
    by_key = {(r["transport"], r["in_flight"], r["latency_ms"], r["mode"]): r for r in runs}
    transports = [t for t in ("http", "tls") if any(r["transport"] == t for r in runs)]
    rows = []

    def result(run, side):
        return ((run or {}).get(side) or {}).get("result") or {}

    def add(workload, transport, run, field, unit, target, limit):
        gl, sdk = result(run, "genesis-launch"), result(run, "sdk")
        g, k = gl.get(field), sdk.get(field)
        rows.append({"workload": workload, "transport": transport, "in_flight": run["in_flight"],
                     "latency_ms": run["latency_ms"], "mode": run["mode"], "field": field, "unit": unit,
                     "genesis_launch": g, "genesis_launch_range": gl.get(field + "_range"), "sdk": k,
                     "sdk_range": sdk.get(field + "_range"),
                     "ratio": g / k if g is not None and k not in (None, 0) else None, "target": target,
                     "met": None if g is None or limit is None else g <= limit})

    cpu_limits = {("http", 100, 0): 0.25, ("tls", 100, 0): 0.5, ("http", 1000, 50): 0.5, ("tls", 1000, 50): 1.0}
    for t in transports:
        for (c, l) in ((100, 0), (1000, 50)):
            run = by_key.get((t, c, l, "tmpfs"))
            if run:
                limit = cpu_limits[(t, c, l)]
                add(f"client CPU / lifecycle, C={c}, L={l} ms, results on tmpfs", t, run, "cpu_ms_per_lifecycle",
                    "ms", f"<= {limit:g} ms", limit)
            disk = by_key.get((t, c, l, "disk"))
            if disk:
                base = result(run, "genesis-launch").get("cpu_ms_per_lifecycle") if run else None
                limit = 2 * base if base else None
                add(f"client CPU / lifecycle, C={c}, L={l} ms, results on disk", t, disk, "cpu_ms_per_lifecycle",
                    "ms", f"<= 2 x tmpfs ({fmt(limit)} ms)" if limit else "<= 2 x tmpfs", limit)
    for t in transports:
        for mode in ("tmpfs", "disk"):
            run = by_key.get((t, 1000, 50, mode))
            if run:
                add(f"client peak RSS, 1000 lifecycles in flight, L=50 ms, results on {mode}", t, run,
                    "peak_rss_mib", "MiB", "<= 50 MiB", 50)
    for c in (100, 1000):
        for t in transports:
            run = by_key.get((t, c, 50, "tmpfs"))
            if run:
                add(f"wall / ideal (6 round trips), 50 ms per request, {run['jobs']} jobs, {c} in flight", t, run,
                    "wall_over_ideal", "", "<= 1.10", 1.10)
                add(f"wall / own ideal (5 round trips; the SDK: 6), same run", t, run, "wall_over_own_ideal", "",
                    "<= 1.10", 1.10)
    for t in transports:
        for (tt, c, l, mode), run in by_key.items():
            if tt == t and mode == "paced":
                add(f"wall / own ideal with the default create_rate (1/s), {run['jobs']} jobs, L={l} ms", t, run,
                    "wall_over_own_ideal", "", "<= 1.10", 1.10)
                add(f"client CPU / lifecycle, same run", t, run, "cpu_ms_per_lifecycle", "ms", "", None)
    return rows


RANGED = ("cpu_ms_per_lifecycle", "cpu_user_ms_per_lifecycle", "cpu_system_ms_per_lifecycle", "wall_over_ideal",
          "wall_over_own_ideal", "peak_rss_mib", "wall_s")


def cmd_report(args):
    records = []
    with open(args.results, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    runs = []
    reps = {}
    for rec in records:
        rec.setdefault("mode", "tmpfs")
        key = (rec["transport"], rec["in_flight"], rec["latency_ms"], rec["mode"])
        run = next((r for r in runs if (r["transport"], r["in_flight"], r["latency_ms"], r["mode"]) == key), None)
        if run is None:
            run = {"transport": rec["transport"], "in_flight": rec["in_flight"], "latency_ms": rec["latency_ms"],
                   "mode": rec["mode"], "results_fs": rec.get("results_fs"), "jobs": rec["jobs"]}
            runs.append(run)
        res = rec.get("result")
        if isinstance(res, dict) and res.get("wall_s") is not None:
            ideal = own_ideal(rec["side"], rec["jobs"], rec["in_flight"], rec["latency_ms"], res.get("create_rate"))
            res["ideal_own_s"] = round(ideal, 4)
            res["wall_over_own_ideal"] = round(res["wall_s"] / ideal, 4) if ideal > 0 else None
        reps.setdefault(key + (rec["side"],), []).append(rec)
    # Repeated runs of a client: every number is the median of its repeats
    # (jobs_ok the smallest), with min-max; a failed repeat fails the side.
    for run in runs:
        for side in SIDES:
            recs = reps.get((run["transport"], run["in_flight"], run["latency_ms"], run["mode"], side))
            if not recs:
                continue
            merged = dict(recs[-1])
            merged["repeats"] = len(recs)
            if any(r.get("failed") for r in recs):
                merged["failed"] = True
                merged["problems"] = [p for r in recs for p in r.get("problems", [])]
            results = [r["result"] for r in recs if isinstance(r.get("result"), dict)]
            if results:
                out = dict(results[-1])
                for k, v in results[-1].items():
                    vals = [x.get(k) for x in results]
                    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
                        out[k] = min(vals) if k == "jobs_ok" else statistics.median(vals)
                        if k in RANGED and len(vals) > 1:
                            out[k + "_range"] = [min(vals), max(vals)]
                merged["result"] = out
                merged["all_results"] = results
            run[side] = merged

    failed = [f"{r['transport']} C={r['in_flight']} L={r['latency_ms']} {r['mode']} {SIDE_NAMES[s]}"
              for r in runs for s in SIDES
              if (not r.get(s) and not (s == "sdk" and r["mode"] == "paced")) or (r.get(s) or {}).get("failed")]

    print()
    print("## Every run" + (f" (medians of {args.repeat} repeats; min-max in brackets)" if args.repeat > 1 else ""))
    print()
    print("wall / ideal: against 6 round trips per lifecycle (the SDK's count); wall / own ideal: against the "
          "client's own round trips (genesis-launch 5, the SDK 6; with the default create_rate, + (N - 1) s of pacing)")
    print()
    header = ["transport", "C", "L ms", "results", "client", "jobs ok", "wall s", "ideal s", "wall / ideal",
              "wall / own ideal", "CPU ms / lifecycle (user + system)", "peak RSS MiB", "requests / lc",
              "connections / lc", "TLS handshakes / lc (resumed)", "emulator CPU ms / lc"]
    rows = []
    for r in runs:
        for s in SIDES:
            rec = r.get(s) or {}
            if not rec and s == "sdk" and r["mode"] == "paced":
                continue
            d = rec.get("result") or {}
            ok = f"{d.get('jobs_ok', 0)}/{r['jobs']}" + (" FAILED" if rec.get("failed") or not rec else "")

            def spread(field):
                rg = d.get(field + "_range")
                return f" [{fmt(rg[0])}-{fmt(rg[1])}]" if rg else ""
            cpu = (f"{fmt(d.get('cpu_ms_per_lifecycle'))} ({fmt(d.get('cpu_user_ms_per_lifecycle'))} + "
                   f"{fmt(d.get('cpu_system_ms_per_lifecycle'))}){spread('cpu_ms_per_lifecycle')}") if d else "—"
            results_where = r["mode"] if r["mode"] != "paced" else "disk, 1 create/s"
            rows.append([r["transport"].upper(), r["in_flight"], r["latency_ms"], results_where, SIDE_NAMES[s], ok,
                         fmt(d.get("wall_s")), fmt(d.get("ideal_s")),
                         "—" if r["mode"] == "paced" else fmt(d.get("wall_over_ideal")) + (spread("wall_over_ideal") if d else ""),
                         fmt(d.get("wall_over_own_ideal")) + (spread("wall_over_own_ideal") if d else ""), cpu,
                         fmt(d.get("peak_rss_mib")) + (spread("peak_rss_mib") if d else ""),
                         fmt(d.get("requests_per_lifecycle")), fmt(d.get("connections_per_lifecycle")),
                         fmt(d.get("tls_handshakes_per_lifecycle")) +
                         (f" ({fmt(d.get('tls_resumed_per_lifecycle'))})" if d.get("tls_handshakes_per_lifecycle") else ""),
                         fmt(d.get("emulator_cpu_ms_per_lifecycle"))])
    print(markdown_table(header, rows))

    table = targets_table(runs)
    print()
    print(f"## Targets: genesis-launch vs the official E2B JS SDK {args.sdk_version} (N = {args.jobs}; medians, "
          f"min-max in brackets)")
    print()
    rows = []
    for row in table:
        unit = f" {row['unit']}" if row["unit"] else ""

        def cell(v, rg):
            if v is None:
                return "—"
            return f"{fmt(v)}{unit}" + (f" [{fmt(rg[0])}-{fmt(rg[1])}]" if rg else "")
        met = {True: "met", False: "**not met**", None: ""}[row["met"]]
        rows.append([row["workload"], row["transport"].upper(),
                     cell(row["genesis_launch"], row["genesis_launch_range"]), cell(row["sdk"], row["sdk_range"]),
                     fmt(row["ratio"], 2), row["target"], met])
    print(markdown_table(["workload", "transport", "genesis-launch", f"E2B JS SDK {args.sdk_version}",
                          "genesis-launch / SDK", "target", ""], rows))

    # What bounds wall / ideal: genesis-launch runs on one io_context thread and
    # the emulator on one, so wall >= each one's CPU time, and >= both together /
    # cores. (Node uses more threads, so for the SDK only the last two hold.)
    cores = os.cpu_count() or 1
    floor_rows = []
    for r in runs:
        if r["latency_ms"] <= 0 or r["mode"] == "paced":
            continue
        for s in SIDES:
            d = ((r.get(s) or {}).get("result")) or {}
            if not d or not d.get("ideal_own_s"):
                continue
            n, ideal = r["jobs"], d["ideal_own_s"]
            client = (d.get("cpu_ms_per_lifecycle") or 0) * n / 1000
            emulator = (d.get("emulator_cpu_ms_per_lifecycle") or 0) * n / 1000
            single_threaded = client if s == "genesis-launch" else 0
            floor = max(ideal, single_threaded, emulator, (client + emulator) / cores) / ideal
            floor_rows.append([r["transport"].upper(), r["in_flight"], r["latency_ms"], r["mode"], SIDE_NAMES[s],
                               fmt(ideal), fmt(client), fmt(emulator), fmt(floor, 2),
                               fmt(d.get("wall_over_own_ideal"))])
    if floor_rows:
        print()
        print(f"## What bounds wall / own ideal ({cores} cores: wall >= emulator CPU, >= client + emulator CPU "
              f"/ {cores}, and >= client CPU for genesis-launch, which runs on one thread)")
        print()
        print(markdown_table(["transport", "C", "L ms", "results", "client", "own ideal s", "client CPU s",
                              "emulator CPU s", "CPU floor of wall / own ideal", "measured wall / own ideal"],
                             floor_rows))

    local = None
    print()
    print("## Local backend vs the xargs -P floor")
    print()
    if args.local:
        with open(args.local, encoding="utf-8") as f:
            text = f.read().strip()
        try:
            local = json.loads(text.splitlines()[-1])
        except (ValueError, IndexError):
            local = None
            failed.append("local (no JSON object from genesis_bench_local)")
            print("genesis_bench_local printed no JSON object")
    if local:
        g = local.get

        def rng(key):
            vals = g(key) or []
            return f" [{fmt(min(vals))}-{fmt(max(vals))}]" if len(vals) > 1 else ""
        cpu = g("launcher_cpu_per_job_ms")
        wall_ok = g("ratio") is not None and g("ratio") <= 1.03
        cpu_ok = cpu is not None and cpu <= 0.5
        where = g("results_dir") or "?"
        try:
            fs_type = subprocess.run(["stat", "-f", "-c", "%T", where], capture_output=True, text=True).stdout.strip()
        except OSError:
            fs_type = ""
        print(f"{g('jobs')} evaluations, {g('slots')} slots, {g('rounds')} rounds (medians, min-max in brackets); "
              f"results and temp folders under {where}{' (' + fs_type + ')' if fs_type else ''}; "
              f"escaped-process sweep {'on' if g('kill_escaped') else 'off'}, private temp folder "
              f"{'on' if g('private_tmp') else 'off'}")
        print()
        print(markdown_table(
            ["jobs", "slots", "floor wall / job", "launcher wall / job", "launcher / floor",
             "launcher CPU / job", "target", ""],
            [[g("jobs"), g("slots"), f"{fmt(g('floor_wall_per_job_ms'))} ms",
              f"{fmt(g('launcher_wall_per_job_ms'))} ms", fmt(g("ratio"), 4) + rng("round_ratios"),
              f"{fmt(cpu)} ms{rng('launcher_cpu_per_job_ms_rounds')}", "wall <= 1.03 x floor, CPU <= 0.5 ms / job",
              f"wall {'met' if wall_ok else '**not met**'}, CPU {'met' if cpu_ok else '**not met**'}"]]))
    elif args.local_note:
        print(args.local_note)

    machine = machine_info()
    print()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"Linux {machine['kernel']}, load average (1 min) now {fmt(machine['load_1min_at_report'])}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)

    if args.json_out:
        out = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": args.command,
            "jobs": args.jobs,
            "sdk_version": args.sdk_version,
            "machine": machine,
            "runs": runs,
            "table": table,
            "local": local,
            "local_note": args.local_note,
            "failed": failed,
        }
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        print(f"[bench] wrote {args.json_out}")
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "ready":
        return cmd_ready(argv[1])
    if len(argv) == 12 and argv[0] == "record":
        return cmd_record(*argv[1:])
    if argv and argv[0] == "report":
        p = argparse.ArgumentParser(prog="bench_report.py report")
        p.add_argument("results")
        p.add_argument("--local")
        p.add_argument("--local-note")
        p.add_argument("--json-out")
        p.add_argument("--command", default="")
        p.add_argument("--jobs", type=int, default=0)
        p.add_argument("--sdk-version", default="")
        p.add_argument("--repeat", type=int, default=1)
        return cmd_report(p.parse_args(argv[1:]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
