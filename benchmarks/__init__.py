"""Benchmark harness: synthpipe's generators side by side with SDV on real tables.

`python -m benchmarks.run ...` trains every system in its own subprocess (worker.py), scores the
synthetic tables (metrics.py), writes one CSV row per dataset x system x seed x comparison and
regenerates docs/BENCHMARKS.md (report.py). See docs/BENCHMARKS.md for the protocol.
"""
