"""Stands in for the engine's Hydra evaluator, as the engine's own does it: loads the
composed config the launch saved as .hydra/config.yaml (in --results_dir or up to two
folders above it) with OmegaConf, fills evaluate_function's ??? values, and calls its
_target_ with the rest as keyword arguments."""
import argparse
import importlib
import os
import sys
from datetime import datetime

from omegaconf import OmegaConf

# Hydra registers this resolver; the saved config is not resolved.
OmegaConf.register_new_resolver("now", lambda pattern: datetime.now().strftime(pattern), use_cache=True, replace=True)

p = argparse.ArgumentParser()
p.add_argument("--program_path", required=True)
p.add_argument("--results_dir", required=True)
a = p.parse_args()
os.makedirs(a.results_dir, exist_ok=True)
folder = os.path.abspath(a.results_dir)
for _ in range(3):
    config = os.path.join(folder, ".hydra", "config.yaml")
    if os.path.isfile(config):
        break
    folder = os.path.dirname(folder)
else:
    sys.exit("no .hydra/config.yaml in --results_dir or two folders above it")
cfg = OmegaConf.load(config)
assert "hydra" not in cfg, "the saved config holds the hydra node"
assert OmegaConf.is_missing(cfg.evaluate_function, "program_path"), "program_path is not ??? in the saved config"
cfg.evaluate_function.program_path = os.path.abspath(a.program_path)
cfg.evaluate_function.results_dir = os.path.abspath(a.results_dir)
arguments = OmegaConf.to_container(cfg.evaluate_function, resolve=True)
module, function = arguments.pop("_target_").rsplit(".", 1)
sys.path.insert(0, os.getcwd())
getattr(importlib.import_module(module), function)(**arguments)
