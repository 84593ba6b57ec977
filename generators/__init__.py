"""Schema inference, reversible transforms and the generative models.

This package knows nothing of Prefect or files, so a library user can fit a generator
without starting an orchestration engine. Models are imported lazily by name.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthpipe.generators.base import BaseGenerator

GENERATORS: dict[str, str] = {
    "vae": "synthpipe.generators.vae:TVAE",
    "gan": "synthpipe.generators.gan:CTGAN",
    "autoregressive": "synthpipe.generators.autoregressive:AutoregressiveTransformer",
}


def get_generator_class(name: str) -> type[BaseGenerator]:
    """Resolve a generator name (as used by the CLI and config) to its class."""
    from synthpipe.generators.errors import ConfigError

    if name not in GENERATORS:
        raise ConfigError(f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}")
    module_name, class_name = GENERATORS[name].split(":")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:  # a model family not built yet
        raise ConfigError(f"generator {name!r} is not available in this build ({exc})") from exc
    return getattr(module, class_name)
