"""The toy task's evaluator: the candidate's run() returns numbers in [0, 1]; the score
is their sum. Runs standalone (the evaluation contract) or as main() from eval_hydra.py."""
import argparse
import importlib.util
import json
import os


def main(program_path, results_dir, **options):
    os.makedirs(results_dir, exist_ok=True)
    error = None
    numbers = []
    try:
        spec = importlib.util.spec_from_file_location("candidate", program_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        numbers = list(module.run())
        if any(not 0 <= x <= 1 for x in numbers):
            error = "numbers must lie in [0, 1]"
    except Exception as e:  # the candidate's failure is a result, not a crash
        error = f"{type(e).__name__}: {e}"
    correct = error is None
    score = float(sum(numbers)) if correct else 0.0
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump({"combined_score": score, "public": {"count": len(numbers), "options": options}, "private": {},
                   "text_feedback": "" if correct else error}, f)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": correct, "error": error}, f)
    print(f"score {score}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--program_path", required=True)
    p.add_argument("--results_dir", required=True)
    a = p.parse_args()
    main(a.program_path, a.results_dir)
