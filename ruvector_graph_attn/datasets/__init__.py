"""Real datasets for benchmarks (parsed from files on the machine; no downloads)."""
