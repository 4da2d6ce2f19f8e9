"""Trivial candidate for genesis_bench_local (never imported by its evaluator)."""


def solve():
    return 1
