"""Prefect orchestration, I/O, configuration and the `synthpipe` command."""
