"""synthpipe: synthetic tabular data pipelines.

The repository root is this package; `flows/`, `generators/` and `validators/` import as
`synthpipe.flows`, `synthpipe.generators` and `synthpipe.validators`. Nothing heavy is imported here
so that `synthpipe --help` stays fast.
"""

__version__ = "0.1.0"
