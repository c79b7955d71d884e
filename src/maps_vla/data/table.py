"""One episode's non-camera features <-> one Parquet file, in the column types LeRobot v2.1 (HF datasets) uses.

A feature of shape (1,) is a plain column (LeRobot's `Value`); a feature of shape (d,) with d > 1 is a fixed-size
list column (`Sequence(length=d)`). The HF datasets schema is stored in the file metadata, as `datasets` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ['write_episode_table', 'read_episode_table']

_NUMPY_TO_HF = {'float32': 'float32', 'float64': 'float64', 'int32': 'int32', 'int64': 'int64', 'bool': 'bool'}


def _hf_feature(ft: dict[str, Any]) -> dict[str, Any]:
    value = {'dtype': _NUMPY_TO_HF[ft['dtype']], '_type': 'Value'}
    if ft['shape'] == [1]:
        return value
    return {'feature': value, 'length': ft['shape'][0], '_type': 'Sequence'}


def write_episode_table(path: Path, columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]]) -> None:
    """Write and fsync one episode's Parquet file.

    Args:
        path: the file to create.
        columns: key -> (T, d) array for every key of `features` (non-camera features only).
        features: the info.json features of those keys.
    """
    arrays, fields, hf = [], [], {}
    for key, ft in features.items():
        values = np.ascontiguousarray(columns[key], dtype=ft['dtype'])
        if ft['shape'] == [1]:
            array = pa.array(values.reshape(-1))
        else:
            array = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), ft['shape'][0])
        arrays.append(array)
        fields.append(pa.field(key, array.type))
        hf[key] = _hf_feature(ft)
    schema = pa.schema(fields, metadata={'huggingface': json.dumps({'info': {'features': hf}})})
    with open(path, 'wb') as f:
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), f)
        f.flush()
        os.fsync(f.fileno())


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
    table = pq.read_table(path, columns=None)
    out = {}
    for key, ft in features.items():
        if key not in table.column_names:
            raise ValueError(f'{str(path)!r} has no column {key!r} (columns: {table.column_names})')
        column = table.column(key).combine_chunks()
        flat = column.flatten() if ft['shape'] != [1] else column
        values = flat.to_numpy(zero_copy_only=False).astype(ft['dtype'], copy=False)
        if values.size != len(table) * ft['shape'][0]:
            raise ValueError(f'{str(path)!r} column {key!r} does not hold {ft["shape"][0]} values per row')
        out[key] = values.reshape(len(table), ft['shape'][0])
    return out
