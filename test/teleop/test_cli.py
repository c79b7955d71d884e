"""`maps-vla teleop` end to end: a real process reading keys from a pseudo-terminal, as over SSH."""

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from maps_vla.cli import main
from maps_vla.data import Dataset

ROOT = Path(__file__).resolve().parents[2]


def test_teleop_without_a_terminal_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'stdin', open(os.devnull))
    assert main(['teleop', '--out', str(tmp_path / 'ds'), '--no-view']) == 2
    assert 'needs a terminal' in capsys.readouterr().err


def test_teleop_bad_device_override(tmp_path, capsys):
    assert main(['teleop', '--device', 'gamepad', '--out', str(tmp_path / 'ds'), 'deadbnd=0.2']) == 2
    assert "Did you mean 'deadband'" in capsys.readouterr().err


def _wait_for(stream, text: bytes, timeout: float) -> bytes:
    seen, end = b'', time.monotonic() + timeout
    while text not in seen and time.monotonic() < end:
        if select.select([stream], [], [], 0.5)[0]:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.slow
def test_teleop_records_from_a_pty(tmp_path):
    master, slave = os.openpty()
    env = {**os.environ, 'PYTHONPATH': str(ROOT / 'src'), 'MUJOCO_GL': 'egl'}
    env.pop('DISPLAY', None)
    out = tmp_path / 'ds'
    proc = subprocess.Popen([sys.executable, '-m', 'maps_vla.cli', 'teleop', '--out', str(out), '--image-size', '32',
                             '--png', '--seed', '4', '--episodes', '1'],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        assert b'toggle the gripper' in _wait_for(proc.stdout, b'toggle the gripper', 60)
        os.write(master, b'\r')  # start recording
        assert b'recording episode 0' in _wait_for(proc.stdout, b'recording episode 0', 10)
        for keys in (b'ww', b'w', b'\r'):  # +x twice in one step (one move), +x, stop and save
            time.sleep(0.35)  # > 3 control steps at 10 Hz, so on an idle machine each write has its own step
            os.write(master, keys)
        rest = _wait_for(proc.stdout, b'saved 1 episodes', 30)
        assert proc.wait(timeout=30) == 0, rest.decode(errors='replace')
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)
    ds = Dataset(out)
    assert ds.num_episodes == 1
    actions = ds.get_episode(0)['action']
    # Moving steps carry dx = +0.01 (default speed), the steps between the writes zeros. Two moves on an idle
    # machine; a loaded one may merge the writes into fewer control steps, never more.
    assert 1 <= np.count_nonzero(actions[:, 0]) <= 2 and set(np.unique(actions[:, 0])) <= {0.0, np.float32(0.01)}
    assert np.all(actions[:, 1:] == 0)
