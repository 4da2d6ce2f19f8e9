"""Trivial evaluator for genesis_bench_local: honours the evaluation contract
(--program_path P --results_dir R; metrics.json and correct.json in R) and does
almost nothing else, so that a job costs about one interpreter start."""
import os
import sys

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
program, results = args["--program_path"], args["--results_dir"]
os.makedirs(results, exist_ok=True)
ok = os.path.isfile(program)
with open(os.path.join(results, "metrics.json"), "w") as f:
    f.write('{"combined_score": %s, "public": {}, "private": {}, "text_feedback": ""}' % (1.0 if ok else 0.0))
with open(os.path.join(results, "correct.json"), "w") as f:
    f.write('{"correct": %s, "error": null}' % ("true" if ok else "false"))
