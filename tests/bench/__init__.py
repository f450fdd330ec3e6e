"""Performance benchmarks (issue 6); run with ``uv run python -m tests.bench``."""
