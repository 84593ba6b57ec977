"""Reading source tables and writing synthetic ones; one module per job:

- `sources`: dispatch of a path, directory, glob or SQL URL to its reader, file discovery,
  provenance;
- `csv`: encoding and delimiter sniffing, pyarrow's CSV reader;
- `parquet`: reading Parquet files and datasets, the chunked dataset writer, its metadata;
- `frames`: Arrow -> pandas without losing values, the one frame hash;
- `atomic`: staging directories swapped into place, locks, versioned runs;
- `secrets`: the one secret masker.

The names below are the package's public interface; import them from here.
"""

from synthpipe.flows.io.atomic import atomic_directory
from synthpipe.flows.io.frames import arrow_to_pandas, frame_hash
from synthpipe.flows.io.parquet import (
    METADATA_KEY,
    PARQUET_SUFFIXES,
    SCHEMA_KEY,
    SIDECAR,
    WriteResult,
    read_parquet_dataset,
    read_parquet_metadata,
    write_parquet,
)
from synthpipe.flows.io.secrets import mask_secrets, mask_url
from synthpipe.flows.io.sources import (
    FORMATS,
    SQLITE_SUFFIXES,
    Provenance,
    is_sql_source,
    read_table,
    to_sqlalchemy_url,
)

__all__ = [
    "FORMATS",
    "METADATA_KEY",
    "PARQUET_SUFFIXES",
    "SCHEMA_KEY",
    "SIDECAR",
    "SQLITE_SUFFIXES",
    "Provenance",
    "WriteResult",
    "arrow_to_pandas",
    "atomic_directory",
    "frame_hash",
    "is_sql_source",
    "mask_secrets",
    "mask_url",
    "read_parquet_dataset",
    "read_parquet_metadata",
    "read_table",
    "to_sqlalchemy_url",
    "write_parquet",
]
