"""Development-only helpers shared by the tests, the benchmarks and the local run (never deployed)."""
