"""control.bag_episodes and `maps-vla bag2episodes`: teleop bags (written with rosbags) -> LeRobot episodes."""

from __future__ import annotations

import numpy as np
import pytest

from maps_vla.cli import main as cli_main
from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_episodes import BagEpisodesConfig, bag_to_episodes
from maps_vla.control.bag_io import BagWriter
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.proprio import StateConfig, TOOL_DOWN_QUAT
from maps_vla.control.recorder import RecorderConfig
from maps_vla.data import Dataset
from maps_vla.policy import EE_DELTA_ACTION, OBS_IMAGE_PREFIX, OBS_STATE

ARM = [f'fr3_joint{i}' for i in range(1, 8)]
FINGERS = ['fr3_finger_joint1', 'fr3_finger_joint2']


def write_teleop_bag(path, *, events=(), seconds=2.0, t0=50.0, slash='/', multiarray=False, storage='sqlite3'):
    """A bag as `ros2 bag record` writes it in teleop.launch.py: absolute topic names, 15 Hz camera, 100 Hz arm
    joints, 15 Hz fingers, 100 Hz pose, 20 Hz actions whose values count the action messages."""
    rows = []
    rows += [(t0 + i / 15, 'camera', i) for i in range(int(seconds * 15))]
    rows += [(t0 + i / 100 + 1e-4, 'arm', i) for i in range(int(seconds * 100))]
    rows += [(t0 + i / 15 + 2e-4, 'fingers', i) for i in range(int(seconds * 15))]
    rows += [(t0 + i / 100 + 3e-4, 'pose', i) for i in range(int(seconds * 100))]
    rows += [(t0 + i / 20 + 4e-4, 'action', i) for i in range(int(seconds * 20))]
    rows += [(t0 + 1e-5, 'instruction', 0)] + [(t0 + t, 'event', e) for t, e in events]
    rows.sort(key=lambda r: r[0])
    topic = {k: slash + v for k, v in dict(
        camera='camera/third_person/image_raw', arm='franka/joint_states', fingers='franka_gripper/joint_states',
        pose='franka_robot_state_broadcaster/current_pose', action='action', instruction='instruction',
        event='episode_events').items()}
    with BagWriter(path, storage=storage) as w:
        types = w.types
        w.add_topic(topic['camera'], 'sensor_msgs/msg/Image', 'sensor_data')
        w.add_topic(topic['arm'], 'sensor_msgs/msg/JointState')
        w.add_topic(topic['fingers'], 'sensor_msgs/msg/JointState')
        w.add_topic(topic['pose'], 'geometry_msgs/msg/PoseStamped', 'sensor_data')
        w.add_topic(topic['action'], 'std_msgs/msg/Float64MultiArray' if multiarray else
                    'trajectory_msgs/msg/JointTrajectory')
        w.add_topic(topic['instruction'], 'std_msgs/msg/String')
        if events:
            w.add_topic(topic['event'], 'std_msgs/msg/String')
        for t, kind, i in rows:
            if kind == 'camera':
                msg = mc.numpy_to_image(types, np.full((48, 64, 3), i, np.uint8), 'bgr8', stamp=t)
            elif kind == 'arm':
                msg = mc.numpy_to_joint_state(types, ARM, np.full(7, 0.1), stamp=t)
            elif kind == 'fingers':
                msg = mc.numpy_to_joint_state(types, FINGERS, [0.02, 0.02], stamp=t)
            elif kind == 'pose':
                msg = mc.numpy_to_pose(types, [0.3 + 0.001 * i, 0.0, 0.4], TOOL_DOWN_QUAT, stamp=t)
            elif kind == 'action':
                value = np.array([i, 0, 0, 0, 0, 0, i % 2], dtype=float)
                msg = mc.numpy_to_multiarray(types, value) if multiarray else mc.chunk_to_trajectory(
                    types, ActionChunk(t, value[None], 0.05, EE_DELTA_ACTION.names))
            elif kind == 'instruction':
                msg = mc.str_to_string(types, 'put the cube in the bowl')
            else:
                msg = mc.str_to_string(types, i)
            w.write(topic[kind], msg, round(t * 1e9))


CFG = BagEpisodesConfig(recorder=RecorderConfig(image_width=32, image_height=24, video=False),
                        joint_states_topics=('franka/joint_states', 'franka_gripper/joint_states'))


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_whole_bag_is_one_episode_aligned_to_fps(tmp_path, storage):
    write_teleop_bag(tmp_path / 'bag', storage=storage)
    report = bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds', CFG)
    assert report.episodes == [0] and report.segments == 1 and report.rejected == {}
    ds = Dataset(tmp_path / 'ds')
    ep = ds.get_episode(0)
    n = len(ep['action'])
    assert n == report.frames[0] == 19  # ticks 50.1 .. 51.9; tick 50.0 runs before the first message is read
    assert report.skipped_ticks == {'no image from third_person': 1}
    ticks = 50.0 + 0.1 * np.arange(1, 20)

    def newest(rate, offset):  # index of the newest message strictly before each tick (ticks run first)
        times = np.round((50.0 + np.arange(200) / rate + offset) * 1e9) * 1e-9
        return np.searchsorted(times, ticks, side='left') - 1

    np.testing.assert_array_equal(ep['action'][:, 0], newest(20, 4e-4))  # action value = its message index
    np.testing.assert_allclose(ep[OBS_STATE][:, 0], 0.3 + 0.001 * newest(100, 3e-4), atol=1e-6)
    np.testing.assert_allclose(ep[OBS_STATE][:, 3:], [[0, 0, 0, 0.02, 0.02]] * n, atol=1e-7)
    np.testing.assert_array_equal(ep[OBS_IMAGE_PREFIX + 'third_person'][:, 0, 0, 0], newest(15, 0.0))
    assert set(ep['task']) == {'put the cube in the bowl'}
    assert ds.info['features'][OBS_STATE]['names'] == [*StateConfig().names]


def test_episode_events_cut_episodes_and_discard(tmp_path):
    events = [(0.2, 'start'), (0.75, 'stop'), (0.9, 'start'), (1.2, 'discard'), (1.3, 'start'), (1.8, 'stop')]
    write_teleop_bag(tmp_path / 'bag', events=events, multiarray=True)
    report = bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds', CFG)
    assert report.segments == 3 and report.episodes == [0, 1]
    assert report.frames == [5, 5]  # ticks 50.3..50.7 and 51.4..51.8
    np.testing.assert_array_equal(Dataset(tmp_path / 'ds').get_episode(1)['action'][:, 0], [27, 29, 31, 33, 35])
    again = bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds', CFG)  # appends
    assert again.episodes == [2, 3] and Dataset(tmp_path / 'ds').num_episodes == 4


def test_missing_topics_are_named(tmp_path):
    write_teleop_bag(tmp_path / 'bag')
    with pytest.raises(ValueError, match=r"bag has no action topic 'teleop/cmd'; it has \['/action'"):
        bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds', BagEpisodesConfig(action_topic='teleop/cmd'))
    with pytest.raises(ValueError, match='none of the joint state topics'):
        bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds2', BagEpisodesConfig(joint_states_topics=('js',)))
    with pytest.raises(FileNotFoundError):
        bag_to_episodes(tmp_path / 'nope', tmp_path / 'ds3')


def test_cli_verb(tmp_path, capsys):
    write_teleop_bag(tmp_path / 'bag', slash='')
    args = ['bag2episodes', str(tmp_path / 'bag'), '--out', str(tmp_path / 'ds'), '--set', 'recorder.video=false',
            '--set', 'recorder.image_width=32', '--set', 'recorder.image_height=24',
            '--set', 'joint_states_topics=[/franka/joint_states, /franka_gripper/joint_states]']
    assert cli_main(args) == 0
    assert '1 of 1 episodes saved (19 frames' in capsys.readouterr().out
    assert cli_main(['bag2episodes', str(tmp_path / 'bag'), '--out', str(tmp_path / 'x'), '--set',
                     'action_topic=nope']) == 1
    assert "bag has no action topic 'nope'" in capsys.readouterr().err
