"""control.recorder: live inputs sampled at the dataset fps into LeRobot episodes."""

from __future__ import annotations

import numpy as np
import pytest

from maps_vla.control.proprio import StateConfig, StateKind, TOOL_DOWN_QUAT
from maps_vla.control.recorder import EpisodeRecorder, RecorderConfig
from maps_vla.data import Dataset
from maps_vla.policy import OBS_IMAGE_PREFIX, OBS_STATE

JOINTS = ('j1', 'j2')
STATE = StateConfig(kind=StateKind.JOINT_POSITIONS, joints=JOINTS, finger_joints=())


def _cfg(tmp_path, **kw):
    base = dict(root=str(tmp_path / 'ds'), fps=10, image_width=32, image_height=24, action_names=('a', 'b'),
                video=False, instruction='stack the cubes')
    return RecorderConfig(**{**base, **kw})


def _feed(rec, t, value):
    """Every input at time t, carrying `value` so frames can be traced back to their inputs."""
    rec.on_image('third_person', np.full((48, 64, 3), int(value) % 256, np.uint8), t)
    rec.on_joint_state(JOINTS, [value, -value], t)
    rec.on_action([value, 2 * value], t)


def test_frames_hold_the_inputs_in_force_at_each_tick(tmp_path):
    with EpisodeRecorder(_cfg(tmp_path), STATE) as rec:
        rec.start()
        for k in range(6):  # inputs at 0.00, 0.05, ... ; ticks at 0.1 k + 0.02
            _feed(rec, 0.05 * k, k)
            if k % 2 == 1:
                assert rec.tick(0.05 * k + 0.02)
        assert rec.frames == 3 and rec.stop() == 0
    ds = Dataset(tmp_path / 'ds')
    ep = ds.get_episode(0)
    np.testing.assert_array_equal(ep['action'], [[1, 2], [3, 6], [5, 10]])
    np.testing.assert_array_equal(ep[OBS_STATE], [[1, -1], [3, -3], [5, -5]])
    assert ep[OBS_IMAGE_PREFIX + 'third_person'].shape == (3, 24, 32, 3)
    np.testing.assert_array_equal(ep[OBS_IMAGE_PREFIX + 'third_person'][:, 0, 0, 0], [1, 3, 5])
    assert ep['task'] == ['stack the cubes'] * 3
    assert ds.info['fps'] == 10 and ds.info['features'][OBS_STATE]['names'] == list(JOINTS)


def test_stale_or_missing_inputs_skip_ticks_with_reasons(tmp_path):
    rec = EpisodeRecorder(_cfg(tmp_path, max_age=0.3), STATE)
    assert not rec.tick(0.0)  # not recording: nothing, nothing counted
    rec.start()
    assert not rec.tick(0.0) and dict(rec.skipped) == {'no image from third_person': 1}
    _feed(rec, 1.0, 1)
    assert rec.tick(1.2) and not rec.tick(1.35)
    rec.on_image('third_person', np.zeros((48, 64, 3), np.uint8), 1.4)
    rec.on_action([0.0, 0.0], 1.4)
    assert not rec.tick(1.4)  # the joint state is 0.4 s old
    assert rec.skipped['image third_person older than 0.3s'] == 1 and rec.skipped['state older than 0.3s'] == 1
    rec.close()


def test_short_episodes_are_discarded_and_datasets_reopened(tmp_path):
    rec = EpisodeRecorder(_cfg(tmp_path, min_frames=3), STATE)
    rec.start()
    _feed(rec, 0.0, 1)
    rec.tick(0.0)
    assert rec.stop() is None  # 1 frame < min_frames
    rec.start()
    for k in range(3):
        _feed(rec, k / 10, k)
        rec.tick(k / 10)
    assert rec.stop() == 0
    with pytest.raises(RuntimeError, match='not recording'):
        rec.stop()
    rec.start()
    with pytest.raises(RuntimeError, match='already recording'):
        rec.start()
    rec.close()  # discards the open episode, finalizes
    assert Dataset(tmp_path / 'ds').num_episodes == 1

    again = EpisodeRecorder(_cfg(tmp_path, min_frames=1), STATE)  # appends to the existing dataset
    again.start()
    _feed(again, 0.0, 7)
    again.tick(0.0)
    assert again.stop() == 1
    again.close()
    other = EpisodeRecorder(_cfg(tmp_path, action_names=('a', 'b', 'c')), STATE)
    with pytest.raises(ValueError, match='record into another root'):
        other.start()


def test_ee_pose_state_and_input_validation(tmp_path):
    rec = EpisodeRecorder(_cfg(tmp_path), StateConfig())  # ee_pose + fr3 fingers
    rec.start()
    rec.on_image('third_person', np.zeros((24, 32, 3), np.uint8), 0.0)
    rec.on_image('wrist', np.zeros((24, 32, 3), np.uint8), 0.0)  # not a recorded camera: ignored
    rec.on_joint_state(['fr3_finger_joint1', 'fr3_finger_joint2'], [0.04, 0.04], 0.0)
    rec.on_action([0.0, 1.0], 0.0)
    assert not rec.tick(0.0) and 'no state (ee_pose)' in rec.skipped
    rec.on_pose([0.3, 0.0, 0.5], TOOL_DOWN_QUAT, 0.0)
    assert rec.tick(0.05)
    with pytest.raises(ValueError, match='an action needs 2 finite values'):
        rec.on_action([0.0, np.nan], 0.1)
    rec.close()


@pytest.mark.parametrize('kwargs, match', [
    (dict(fps=0), 'fps must be a positive integer'),
    (dict(cameras=('a', 'a')), 'distinct non-empty'),
    (dict(max_age=0.0), 'max_age must be'),
    (dict(action_names=()), 'at least one action'),
    (dict(min_frames=0), 'min_frames must be'),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecorderConfig(**kwargs)
