"""Performance benchmarks (README, Performance); run with ``uv run python -m tests.bench``."""
