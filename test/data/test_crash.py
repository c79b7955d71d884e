"""A writer killed with SIGKILL mid-episode or mid-save loses at most that episode; the dataset still opens and
a new writer repairs it and appends."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter

SRC = Path(__file__).resolve().parents[2] / 'src'

# Appends episode 2 to an existing dataset, then dies: 'mid_episode' after 3 frames (killed by the parent),
# or '<stage>' by SIGKILLing itself when save_episode logs that stage (files_moved, stats_appended, committed).
_CHILD = textwrap.dedent('''
    import logging, os, signal, sys, time
    import numpy as np
    from maps_vla.data import DatasetWriter

    root, mode = sys.argv[1], sys.argv[2]

    class KillAt(logging.Handler):
        def emit(self, record):
            if record.args and record.args[-1] == mode:
                os.kill(os.getpid(), signal.SIGKILL)

    log = logging.getLogger('maps_vla.data.writer')
    log.setLevel(logging.DEBUG)
    log.addHandler(KillAt())
    writer = DatasetWriter.open(root)
    rng = np.random.default_rng(5)
    for i in range(4):
        frame = {}
        for key in writer.frame_keys:
            ft = writer.features[key]
            frame[key] = (rng.integers(0, 256, ft['shape'], dtype=np.uint8) if ft['dtype'] == 'video'
                          else rng.normal(size=ft['shape']).astype(ft['dtype']))
        writer.add_frame(frame, task='new task')
        if mode == 'mid_episode' and i == 2:
            print('READY', flush=True)
            time.sleep(60)
    writer.save_episode()
    print('SAVED', flush=True)
''')


def _run_child(root, mode):
    env = {**os.environ, 'PYTHONPATH': str(SRC)}
    proc = subprocess.Popen([sys.executable, '-c', _CHILD, str(root), mode], stdout=subprocess.PIPE, text=True,
                            env=env)
    if mode == 'mid_episode':
        assert proc.stdout.readline().strip() == 'READY'
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, out)
    assert 'SAVED' not in out


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
    _run_child(root, mode)

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
