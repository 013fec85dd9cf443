"""The scale benchmark (run it as `python3 benchmarks/scale`; see __main__.py)."""
