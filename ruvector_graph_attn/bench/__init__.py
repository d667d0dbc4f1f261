"""Benchmarks: each module has build_parser(prog) and run(args) -> int; benchmarks/*.py call them."""
