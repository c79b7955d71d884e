"""Episode frames <-> Parquet tables, in the column types LeRobot (HF datasets) uses.

A feature of shape (1,) is a plain column (LeRobot's `Value`); a feature of shape (d,) with d > 1 is a fixed-size
list column (`Sequence(length=d)`); a camera of dtype 'image' is a `struct<bytes: binary, path: string>` column of
PNG files (HF `Image`). The HF datasets schema is stored in the file metadata, as `datasets` does. v2.1 writes one
file per episode; v3.0 files hold many episodes, one row group each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ['IMAGE_TYPE', 'episode_table', 'write_tables', 'write_episode_table', 'read_episode_table',
           'table_columns']

IMAGE_TYPE = pa.struct([('bytes', pa.binary()), ('path', pa.string())])  # HF datasets' Image storage
_NUMPY_TO_HF = {'float32': 'float32', 'float64': 'float64', 'int32': 'int32', 'int64': 'int64', 'bool': 'bool'}


def _hf_feature(ft: dict[str, Any]) -> dict[str, Any]:
    value = {'dtype': _NUMPY_TO_HF[ft['dtype']], '_type': 'Value'}
    if ft['shape'] == [1]:
        return value
    return {'feature': value, 'length': ft['shape'][0], '_type': 'Sequence'}


def episode_table(columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]],
                  images: dict[str, list[bytes]] | None = None, image_names: list[str] | None = None) -> pa.Table:
    """One episode as an Arrow table with the HF schema metadata.

    Args:
        columns: key -> (T, d) array for every numeric key of `features`.
        features: the features to store, in column order (numeric ones and, for image mode, 'image' cameras).
        images: camera key -> T encoded PNG files, for the features of dtype 'image'.
        image_names: the `path` stored next to each PNG (T names), e.g. 'frame-000000.png'.
    """
    arrays, fields, hf = [], [], {}
    for key, ft in features.items():
        if ft['dtype'] == 'image':
            files = (images or {})[key]
            names = image_names if image_names is not None else [None] * len(files)
            array = pa.StructArray.from_arrays([pa.array(files, pa.binary()), pa.array(names, pa.string())],
                                               fields=list(IMAGE_TYPE))
            hf[key] = {'_type': 'Image'}
        else:
            values = np.ascontiguousarray(columns[key], dtype=ft['dtype'])
            if ft['shape'] == [1]:
                array = pa.array(values.reshape(-1))
            else:
                array = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), ft['shape'][0])
            hf[key] = _hf_feature(ft)
        arrays.append(array)
        fields.append(pa.field(key, array.type))
    schema = pa.schema(fields, metadata={'huggingface': json.dumps({'info': {'features': hf}})})
    return pa.Table.from_arrays(arrays, schema=schema)


def write_tables(path: Path, tables: list[pa.Table]) -> None:
    """Write tables of the same schema into one Parquet file, one row group each, and fsync it.

    PNG columns are stored without compression or dictionary encoding (PNG bytes do not compress, and trying
    costs more than the write); the other columns with snappy, as LeRobot writes them.
    """
    images = [f.name for f in tables[0].schema if f.type == IMAGE_TYPE]
    compression = {f.name: ('NONE' if f.name in images else 'SNAPPY') for f in tables[0].schema}
    dictionary = [f.name for f in tables[0].schema if f.name not in images]
    with open(path, 'wb') as f:
        with pq.ParquetWriter(f, tables[0].schema, compression=compression, use_dictionary=dictionary) as writer:
            for table in tables:
                writer.write_table(table, row_group_size=max(len(table), 1))
        f.flush()
        os.fsync(f.fileno())


def write_episode_table(path: Path, columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]]) -> None:
    """Write and fsync one episode's Parquet file (v2.1: non-camera features only).

    Args:
        path: the file to create.
        columns: key -> (T, d) array for every key of `features` (non-camera features only).
        features: the info.json features of those keys.
    """
    write_tables(path, [episode_table(columns, features)])


def table_columns(table: pa.Table, features: dict[str, dict[str, Any]], where: str) -> dict[str, np.ndarray]:
    """The numeric `features` of an Arrow table as key -> (T, d) arrays in the feature's dtype.

    Raises:
        ValueError: a column is missing or has the wrong width (`where` names the file in the message).
    """
    out = {}
    for key, ft in features.items():
        if key not in table.column_names:
            raise ValueError(f'{where} has no column {key!r} (columns: {table.column_names})')
        column = table.column(key).combine_chunks()
        flat = column.flatten() if ft['shape'] != [1] else column
        values = flat.to_numpy(zero_copy_only=False).astype(ft['dtype'], copy=False)
        if values.size != len(table) * ft['shape'][0]:
            raise ValueError(f'{where} column {key!r} does not hold {ft["shape"][0]} values per row')
        out[key] = values.reshape(len(table), ft['shape'][0])
    return out


def read_episode_table(path: Path, features: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Read one episode's Parquet file.

    Returns:
        key -> (T, d) array in the feature's dtype.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a column of `features` is missing or has the wrong width.
    """
    if not path.is_file():
        raise FileNotFoundError(f'episode file {str(path)!r} does not exist')
    names = pq.read_schema(path).names
    table = pq.read_table(path, columns=[k for k in features if k in names])
    return table_columns(table, features, repr(str(path)))
