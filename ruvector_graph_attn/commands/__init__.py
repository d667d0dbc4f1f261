"""Command-line subcommands: each module has build_parser(prog) and run(args) -> int."""
