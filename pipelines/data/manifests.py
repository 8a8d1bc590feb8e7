"""Parquet manifests exchanged between commands, each stamped with its schema name and version.

The stamp lives in the parquet key-value metadata (`speakembed.schema`, `speakembed.version`);
readers check it and the required columns, and reject unknown versions with a clear message.
Writes go to a temporary file that is renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from speakembed.pipelines.base.errors import InputNotFoundError, ManifestError
from speakembed.pipelines.base.outputs import write_atomically

SCHEMA_KEY = b"speakembed.schema"
VERSION_KEY = b"speakembed.version"


@dataclass(frozen=True)
class Schema:
    """A parquet manifest's name, version and column dtypes (stamped into the file's key-value metadata)."""
    name: str
    version: int
    columns: dict[str, str]  # column -> pandas dtype


SCHEMAS = {
    schema.name: schema
    for schema in (
        Schema("recordings", 1, {"recording_id": "string", "path": "string", "sample_rate": "int64",
                                 "num_samples": "int64", "num_channels": "int64", "duration_s": "float64"}),
        Schema("segments", 1, {"segment_id": "string", "recording_id": "string", "start_s": "float64",
                               "duration_s": "float64", "speaker": "string", "split": "string",
                               "text": "string", "language": "string"}),
        Schema("trials", 1, {"enroll": "string", "test": "string", "label": "Int8"}),
        Schema("scores", 1, {"enroll": "string", "test": "string", "score": "float32", "encoder": "string"}),
        Schema("failures", 1, {"item_id": "string", "stage": "string", "reason": "string", "detail": "string"}),
        Schema("diarisation", 1, {"recording_id": "string", "start_s": "float64", "duration_s": "float64",
                                  "speaker": "string", "confidence": "float32", "overlap": "bool"}),
        Schema("similarities", 1, {"recording_id": "string", "time_s": "float64", "speaker": "string",
                                   "similarity": "float32"}),
        Schema("identities", 1, {"item_id": "string", "identity": "string", "rank": "int64", "speaker": "string",
                                 "score": "float32", "probability": "float32", "encoder": "string"}),
    )
}



def write_table(table: pd.DataFrame, path: str | Path, schema_name: str) -> Path:
    """Write `table` as a stamped parquet file, atomically. Extra columns are kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = SCHEMAS[schema_name]
    missing = [column for column in schema.columns if column not in table.columns]
    if missing:
        raise ValueError(f"{schema_name} table lacks columns {missing}")
    table = table.astype({column: dtype for column, dtype in schema.columns.items()})
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata.update({SCHEMA_KEY: schema.name.encode(), VERSION_KEY: str(schema.version).encode()})
    path = Path(path)
    write_atomically(path, lambda out: pq.write_table(arrow.replace_schema_metadata(metadata), out))
    return path


def read_table(path: str | Path, schema_name: str) -> pd.DataFrame:
    """Read a stamped parquet file and check its schema name, version and columns."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such manifest file")
    try:
        parquet_schema = pq.read_schema(path)
    except Exception as error:
        raise ManifestError(f"{path}: not a readable parquet file ({error}); give a {schema_name}.parquet written by spk") from None
    metadata = parquet_schema.metadata or {}
    schema = SCHEMAS[schema_name]
    found_name = metadata.get(SCHEMA_KEY, b"").decode()
    if found_name != schema.name:
        what = f"a '{found_name}' manifest" if found_name else "a parquet file without a speakembed schema stamp"
        raise ManifestError(f"{path}: expected a '{schema.name}' manifest, found {what}")
    found_version = metadata.get(VERSION_KEY, b"").decode()
    if found_version != str(schema.version):
        raise ManifestError(
            f"{path}: '{schema.name}' schema version {found_version or '?'} is not supported "
            f"(this spk reads version {schema.version}); upgrade spk or re-create the file"
        )
    table = pd.read_parquet(path)
    missing = [column for column in schema.columns if column not in table.columns]
    if missing:
        raise ManifestError(f"{path}: '{schema.name}' manifest lacks columns {missing}")
    return table
