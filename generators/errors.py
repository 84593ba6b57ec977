"""Errors a user can act on.

Every message names the file or column at fault and what is wrong with it; the CLI prints the
message alone (no traceback) and maps the class to an exit code.
"""


class SynthpipeError(Exception):
    """Base class: an error whose message is meant for the user."""

    exit_code = 1


class DataError(SynthpipeError):
    """The input table (file, column or value) cannot be used as it is."""


class ConfigError(SynthpipeError):
    """A configuration value or command-line argument is invalid."""

    exit_code = 2


class ModelError(SynthpipeError):
    """A saved model is missing, corrupt or incompatible."""
