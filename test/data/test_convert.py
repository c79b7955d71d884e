"""`maps-vla convert`: v2.1 -> v3.0 -> v2.1 gives identical values and metadata (mp4 packets and PNG bytes are
copied, not re-encoded); both results pass the published-format checks."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from maps_vla.cli import main
from maps_vla.data import Dataset
from maps_vla.data.convert import convert_dataset


def _test_v3():
    spec = importlib.util.spec_from_file_location('maps_vla_test_v3', Path(__file__).with_name('test_v3.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_values(ds):
    return [ds.get_episode(i) for i in range(ds.num_episodes)]


def _assert_same(a, b):
    assert a.tasks == b.tasks and [e.length for e in a.episodes] == [e.length for e in b.episodes]
    for ea, eb in zip(_all_values(a), _all_values(b)):
        assert set(ea) == set(eb)
        for key in ea:
            if key == 'task':
                assert ea[key] == eb[key]
            else:
                np.testing.assert_array_equal(ea[key], eb[key], err_msg=key)


@pytest.mark.parametrize('video', [True, False])
def test_v21_to_v30_to_v21_is_identical(write_dataset, helpers, tmp_path, video):
    check_published_v3 = _test_v3().check_published_v3
    lengths = (5, 7, 4)
    root, _ = write_dataset(video=video, lengths=lengths, tasks=['a', 'b', 'a'], codebase_version='v2.1')
    v3 = convert_dataset(root, tmp_path / 'v3', 'v3.0')
    assert (v3.episodes, v3.frames, v3.data_files) == (3, 16, 1)
    check_published_v3(tmp_path / 'v3', helpers.FEATURES, lengths, video)
    back = convert_dataset(tmp_path / 'v3', tmp_path / 'back', 'v2.1')
    assert back.reencoded == 0
    original, packed, unpacked = Dataset(root), Dataset(tmp_path / 'v3'), Dataset(tmp_path / 'back')
    _assert_same(original, packed)
    _assert_same(original, unpacked)
    for name in ('meta/episodes.jsonl', 'meta/tasks.jsonl', 'meta/stats.json'):
        assert (root / name).read_text().split() == (tmp_path / 'back' / name).read_text().split(), name
    stats = [json.loads(line) for line in (tmp_path / 'back/meta/episodes_stats.jsonl').read_text().splitlines()]
    assert stats == [json.loads(line) for line in (root / 'meta/episodes_stats.jsonl').read_text().splitlines()]
    info, info_back = (json.loads((r / 'meta/info.json').read_text()) for r in (root, tmp_path / 'back'))
    assert info == info_back
    if video:  # the very same packets: the files decode to the same frames and have the same sizes
        for key in helpers.CAMERAS:
            for i in range(3):
                name = f'videos/chunk-000/{key}/episode_{i:06d}.mp4'
                assert abs((root / name).stat().st_size - (tmp_path / 'back' / name).stat().st_size) < 200


def test_v30_to_v21_to_v30_is_identical(write_dataset, tmp_path):
    root, _ = write_dataset(video=True, lengths=(6, 3), tasks=['a', 'b'])
    convert_dataset(root, tmp_path / 'v21', 'v2.1')
    convert_dataset(tmp_path / 'v21', tmp_path / 'v3', 'v3.0')
    _assert_same(Dataset(root), Dataset(tmp_path / 'v3'))
    rows = pq.read_table(tmp_path / 'v3/meta/episodes/chunk-000/file-000.parquet').to_pylist()
    assert rows == pq.read_table(root / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()


def test_size_limit_packs_into_several_files(write_dataset, tmp_path, monkeypatch):
    from maps_vla.data import convert

    root, _ = write_dataset(video=True, lengths=(4, 5, 6, 3), codebase_version='v2.1')
    monkeypatch.setattr(convert, '_MB', 2500)
    report = convert_dataset(root, tmp_path / 'v3', 'v3.0', data_files_size_in_mb=1, video_files_size_in_mb=1)
    assert report.data_files > 1 and report.video_files > 2
    _assert_same(Dataset(root), Dataset(tmp_path / 'v3'))


def test_cli_verb_and_refusals(write_dataset, tmp_path, capsys):
    root, _ = write_dataset(video=False, lengths=(3,), codebase_version='v2.1')
    assert main(['convert', str(root), str(tmp_path / 'out')]) == 0  # to the other version by default
    assert Dataset(tmp_path / 'out').version == 'v3.0'
    assert 'convert' in capsys.readouterr().out
    assert main(['convert', str(root), str(tmp_path / 'out'), '--to', 'v3.0']) == 1
    assert 'not empty' in capsys.readouterr().err
    assert main(['convert', str(root), str(tmp_path / 'same'), '--to', 'v2.1']) == 1
    assert 'already is a v2.1 dataset' in capsys.readouterr().err
    assert not (tmp_path / 'same').exists() and not (tmp_path / '.same.partial').exists()
