import numpy as np
import pytest

from maps_vla.cli import main as cli_main
from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_io import BagError, bag_topics, read_messages
from maps_vla.control.builtin_policies import SinePolicy, ZeroPolicy, load_policy, make_policy
from maps_vla.control.camera import CameraConfig
from maps_vla.control.franka_limits import joint_limits
from maps_vla.control.pipeline import ReplayConfig, replay_bag
from maps_vla.control.smoothing import SmootherConfig
from maps_vla.policy import ActionSpec

OUT_TOPICS = {'action_chunk': 'trajectory_msgs/msg/JointTrajectory', 'action': 'trajectory_msgs/msg/JointTrajectory',
              'command': 'geometry_msgs/msg/PoseStamped', 'gripper': 'std_msgs/msg/Float64MultiArray',
              'safety_status': 'std_msgs/msg/String'}


def _by_topic(path):
    out = {}
    for m in read_messages(path):
        out.setdefault(m.topic, []).append(m)
    return out


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_replay_sine_policy_end_to_end(tmp_path, robot_bag, storage):
    written = robot_bag(tmp_path / 'in', storage=storage, seconds=2.0, bad_image_at=(5,))
    cfg = ReplayConfig(storage=storage, policy_latency=0.05,
                       smoother=SmootherConfig(max_velocity=(0.05,), max_acceleration=(1.0,), max_jerk=(50.0,)))
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', make_policy('sine'), cfg)

    assert report.messages == written
    assert report.rejected == {"camera/third_person/image_raw: Image step 64 is shorter than one 'bgr8' row of "
                               'width 64 (64 px * 3 bytes = 192 bytes)': 1}
    assert report.rejected_examples[0].startswith('camera/third_person/image_raw @ 1000.333s')
    assert report.ticks == 199 and report.runner.errors == 0  # ticks 0..1.98 s: the last message is at 1.9801 s
    assert report.chunks == report.runner.completed >= 15
    assert report.runner.stale_reasons == {'no image from third_person': 1}  # the first tick precedes any frame

    topics = bag_topics(tmp_path / 'out')
    assert {t: i.msgtype for t, i in topics.items()} == OUT_TOPICS
    assert {t: i.count for t, i in topics.items()} == report.written
    assert topics['action_chunk'].count == report.chunks
    assert topics['action'].count == sum(report.smoother_states.values())
    assert topics['command'].count == report.ticks  # the anchored target is sent from the first tick on
    assert topics['gripper'].count >= 1

    out = _by_topic(tmp_path / 'out')
    for m in out['action_chunk']:
        chunk = mc.trajectory_to_chunk(m.msg)
        assert chunk.horizon == 10 and chunk.dt == pytest.approx(0.1) and chunk.names == ActionSpec().names
        assert m.time - chunk.stamp >= 0.05 - 1e-9  # observation time, one simulated latency before arrival
    positions = np.array([mc.pose_to_numpy(m.msg).position for m in out['command']])
    assert np.abs(np.diff(positions, axis=0)).max() <= 0.004 + 1e-12
    assert positions.std(axis=0).max() > 1e-3  # the sine policy moved the target
    m = report.action_smoothness
    assert m.max_seam_step <= 0.05 * 0.01 + 1e-12 and m.max_step <= 0.05 * 0.01 + 1e-12
    assert report.safety_status['active'] > 150 and 'hold_watchdog' in report.safety_status


def test_replay_is_deterministic_and_handles_compressed_images(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', compressed=True, seconds=1.0)
    cfg = ReplayConfig(camera=CameraConfig(compressed=True))
    runs = []
    for name in ('a', 'b'):
        report = replay_bag(tmp_path / 'in', tmp_path / name, SinePolicy(), cfg)
        assert report.rejected == {} and report.chunks >= 8
        runs.append([mc.pose_to_numpy(m.msg).position for m in _by_topic(tmp_path / name)['command']])
    assert np.array_equal(np.array(runs[0]), np.array(runs[1]))


def test_replay_joint_mode_stays_in_limits(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=1.5)
    names = joint_limits('fr3').names
    spec = ActionSpec(names=(*names, 'gripper'), kind='joint_position', gripper_index=7, control_hz=10.0)
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', SinePolicy(spec, amplitude=0.3), ReplayConfig(action=spec))
    out = _by_topic(tmp_path / 'out')
    assert out['command'][0].msgtype == 'trajectory_msgs/msg/JointTrajectory'
    q = np.array([mc.trajectory_to_chunk(m.msg, dt=0.01).actions[0] for m in out['command']])
    lower, upper, velocity, _ = joint_limits('fr3').arrays()
    assert np.all(q >= lower) and np.all(q <= upper)
    assert np.all(np.abs(np.diff(q, axis=0)) <= velocity * 0.5 / 100 + 1e-12)
    assert list(out['command'][0].msg.joint_names) == list(names)
    assert report.safety_status['active'] > 100


def test_replay_with_measured_poses_keeps_targets_near_them(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=1.0, pose_topic='franka_robot_state_broadcaster/current_pose')
    cfg = ReplayConfig(pose_topic='franka_robot_state_broadcaster/current_pose')
    replay_bag(tmp_path / 'in', tmp_path / 'out', SinePolicy(amplitude=0.5), cfg)
    positions = np.array([mc.pose_to_numpy(m.msg).position for m in _by_topic(tmp_path / 'out')['command']])
    assert np.linalg.norm(positions - [0.4, 0.0, 0.4], axis=1).max() <= 0.05 + 1e-9  # max_lead


def test_without_an_instruction_every_request_is_stale(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=0.5, instruction=None)
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy(), ReplayConfig())
    assert report.chunks == 0 and report.runner.stale_reasons.get('no instruction', 0) >= 4
    report = replay_bag(tmp_path / 'in', tmp_path / 'out2', ZeroPolicy(), ReplayConfig(instruction='wave'))
    assert report.chunks >= 4


def test_truncated_input_bag_is_a_clear_error(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', storage='mcap', seconds=0.5)
    data = tmp_path / 'in' / 'in.mcap'
    data.write_bytes(data.read_bytes()[:-200])
    with pytest.raises(BagError, match=str(tmp_path / 'in')):
        replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy())


def test_cli_replay(tmp_path, robot_bag, capsys):
    robot_bag(tmp_path / 'in', seconds=0.5)
    code = cli_main(['replay', str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--policy', 'sine',
                     '--storage', 'mcap', '--set', 'smoother.method=temporal_ensemble'])
    assert code == 0
    assert 'replay ' in capsys.readouterr().out and (tmp_path / 'out' / 'out.mcap').is_file()
    assert cli_main(['replay', str(tmp_path / 'in'), '--out', str(tmp_path / 'o2'), '--policy', 'sinus']) == 1
    assert "Did you mean 'sine'" in capsys.readouterr().err
    assert cli_main(['replay', str(tmp_path / 'in'), '--out', str(tmp_path / 'out')]) == 1
    assert 'already exists' in capsys.readouterr().err


def test_load_policy_reads_a_checkpoint(tmp_path):
    import numpy as np

    from maps_vla.model.factory import make_policy

    make_policy('tiny').save_pretrained(tmp_path / 'ckpt')
    policy = load_policy(tmp_path / 'ckpt')
    image = np.zeros((28, 28, 3), np.uint8)
    obs = {'observation.images.third_person': image, 'observation.images.wrist': image,
           'observation.state': np.zeros(8, np.float32), 'task': 'pick up the cube'}
    assert policy.infer(obs)['actions'].shape == (8, 7)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_policy(tmp_path / 'missing')


def test_replay_config_roundtrips_through_yaml(tmp_path):
    from maps_vla.config import load_config, save_config

    save_config(ReplayConfig(), tmp_path / 'replay.yaml')
    assert load_config(ReplayConfig, tmp_path / 'replay.yaml') == ReplayConfig()
    cfg = load_config(ReplayConfig, tmp_path / 'replay.yaml',
                      ['smoother.method=temporal_ensemble', 'smoother.max_velocity=[0.1, .inf]', 'action.control_hz=5'])
    assert cfg.smoother.method.value == 'temporal_ensemble' and cfg.smoother.max_velocity == (0.1, float('inf'))
    assert cfg.action.control_hz == 5.0
    with pytest.raises(ValueError, match="Did you mean 'policy_hz'"):
        load_config(ReplayConfig, None, ['policy_hs=3'])
