"""A writer killed with SIGKILL mid-episode or mid-save loses at most that episode; the dataset still opens and
a new writer repairs it and appends."""

import json

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter


def _check_consistent(root, episodes):
    ds = Dataset(root)
    assert ds.num_episodes == episodes
    info = json.loads((root / 'meta/info.json').read_text())
    assert (info['total_episodes'], info['total_frames']) == (episodes, len(ds))
    indices = np.concatenate([ds.get_episode(i)['index'][:, 0] for i in range(episodes)])
    np.testing.assert_array_equal(indices, np.arange(len(ds)))
    assert len((root / 'meta/episodes_stats.jsonl').read_text().splitlines()) == episodes
    assert len(list((root / 'data').rglob('*.parquet'))) == episodes
    assert len(list((root / 'videos').rglob('*.mp4'))) == 2 * episodes
    assert not (root / '.tmp').exists()
    return ds


@pytest.mark.slow
@pytest.mark.parametrize('mode, committed', [
    ('mid_episode', False), ('files_moved', False), ('stats_appended', False), ('committed', True),
    ('info_written', True)])
def test_killed_writer_loses_at_most_one_episode(write_dataset, helpers, mode, committed):
    root, episodes = write_dataset(video=True, lengths=(3, 4), codebase_version='v2.1')
    helpers.kill_writer(root, mode, 'maps_vla.data.writer')

    ds = Dataset(root)  # opens as is, without repair
    expected = 3 if committed else 2
    assert ds.num_episodes == expected
    for i in range(expected):
        ep = ds.get_episode(i)
        assert len(ep['action']) == len(ep[helpers.CAMERAS[0]]) == ds.episodes[i].length
    np.testing.assert_array_equal(ds.get_episode(1)['action'], np.stack([f['action'] for f in episodes[1]]))
    if committed:
        assert ds.tasks == ['pick the cube', 'new task'] and ds.episodes[2].length == 4
        assert ds.stats['action']['count'].tolist() == [11]  # stats.json lagged: pooled from the episode lines

    with DatasetWriter.open(root) as writer:  # repairs, then appends
        assert writer.num_episodes == expected
        for frame in helpers.make_episode(np.random.default_rng(9), 2):
            writer.add_frame(frame)
        assert writer.save_episode() == expected
    _check_consistent(root, expected + 1)


def test_torn_jsonl_line_is_ignored_then_repaired(write_dataset, helpers, caplog):
    root, _ = write_dataset(video=False, lengths=(2, 3), codebase_version='v2.1')
    with open(root / 'meta/episodes.jsonl', 'a') as f:
        f.write('{"episode_index": 2, "tas')  # an append cut short
    assert Dataset(root).num_episodes == 2
    assert 'torn last line' in caplog.text
    with DatasetWriter.open(root) as writer:
        for frame in helpers.make_episode(np.random.default_rng(1), 2):
            writer.add_frame(frame)
        writer.save_episode()
    lines = (root / 'meta/episodes.jsonl').read_text().splitlines()
    assert [json.loads(line)['episode_index'] for line in lines] == [0, 1, 2]
