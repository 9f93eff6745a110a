"""pytest-benchmark suite: showers/s and speed-ups over FP32 of every variant, the CI gate on speed-up floors.

Run with ``pytest benchmarks --benchmark-compare`` (see benchmarks/conftest.py for the options).
"""
