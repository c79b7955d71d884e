import numpy as np
import pytest

from maps_vla.cli import main as cli_main
from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_io import BagError, bag_topics, read_messages
from maps_vla.control.builtin_policies import SinePolicy, ZeroPolicy, load_policy, make_policy
from maps_vla.control.camera import CameraConfig
from maps_vla.control.franka_limits import joint_limits
from maps_vla.control.pipeline import ReplayConfig, ReplayError, replay_bag
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


def _leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name != 'in')


def test_a_replay_that_produces_no_chunk_is_an_error_and_writes_nothing(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=0.5, instruction=None)
    with pytest.raises(ReplayError, match="produced no action chunk: .*'no instruction': 4") as info:
        replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy(), ReplayConfig())
    assert info.value.report.chunks == 0 and info.value.report.runner.stale_reasons.get('no instruction', 0) >= 4
    assert _leftovers(tmp_path) == []  # no empty output bag blocks the rerun, no temporary folder is left
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy(), ReplayConfig(instruction='wave'))
    assert report.chunks >= 4 and _leftovers(tmp_path) == ['out']


class FailingPolicy(ZeroPolicy):
    def infer(self, obs):
        raise KeyError("Observation lacks ['observation.images.wrist']")


def test_a_replay_whose_inferences_all_fail_is_an_error(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=0.5)
    with pytest.raises(ReplayError, match=r'4 run, 4 failed'):
        replay_bag(tmp_path / 'in', tmp_path / 'out', FailingPolicy())
    assert _leftovers(tmp_path) == []


def test_a_missing_camera_topic_lists_the_image_topics_and_how_to_map_them(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=0.5)
    cfg = ReplayConfig(camera=CameraConfig(names=('wrist',)))
    with pytest.raises(BagError, match=r"no topic 'camera/wrist/image_raw'; its image topics: "
                                       r"\['camera/third_person/image_raw'\]; "
                                       r"map the cameras \['wrist'\] .*camera.topics"):
        replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy(), cfg)
    assert _leftovers(tmp_path) == []
    cfg = ReplayConfig(camera=CameraConfig(names=('wrist',), topics=('camera/third_person/image_raw',)))
    assert replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy(), cfg).chunks >= 4  # mapped, it runs


def test_truncated_sqlite_input_is_a_clear_error_with_the_repair(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', storage='sqlite3', seconds=0.5)
    data = tmp_path / 'in' / 'in.db3'
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 6 // 10])
    with pytest.raises(BagError, match=str(tmp_path / 'in')) as info:
        replay_bag(tmp_path / 'in', tmp_path / 'out', ZeroPolicy())
    assert 'ros2 bag reindex' in str(info.value) and _leftovers(tmp_path) == []


def test_truncated_mcap_input_replays_its_readable_prefix(tmp_path, robot_bag, caplog):
    written = robot_bag(tmp_path / 'in', storage='mcap', seconds=2.0)
    data = tmp_path / 'in' / 'in.mcap'
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 6 // 10])
    with caplog.at_level('WARNING', logger='maps_vla.control.bag_io'):
        report = replay_bag(tmp_path / 'in', tmp_path / 'out', SinePolicy())
    assert 0 < sum(report.messages.values()) < sum(written.values()) and report.chunks >= 5
    assert 'truncated' in caplog.text and 'readable prefix' in caplog.text


class NaNEveryOtherPolicy(SinePolicy):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def infer(self, obs):
        out = super().infer(obs)
        self.calls += 1
        if self.calls % 2 == 0:
            out['actions'] = np.array(out['actions'], dtype=np.float64)
            out['actions'][3, 1] = np.nan
        return out


@pytest.mark.parametrize('limits', [False, True])
def test_non_finite_policy_output_never_reaches_any_topic(tmp_path, robot_bag, limits):
    robot_bag(tmp_path / 'in', seconds=2.0)
    smoother = SmootherConfig(max_velocity=(0.05,), max_acceleration=(1.0,), max_jerk=(50.0,)) if limits else \
        SmootherConfig()
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', NaNEveryOtherPolicy(), ReplayConfig(smoother=smoother))
    assert report.runner.non_finite >= 8 and report.runner.errors == report.runner.non_finite
    assert report.chunks >= 8 and report.smoother_states.get('tracking', 0) > 100
    assert 'hold_rejected' not in report.safety_status  # nothing non-finite got as far as the bridge
    out = _by_topic(tmp_path / 'out')
    for topic in ('action_chunk', 'action'):
        for m in out[topic]:
            assert np.all(np.isfinite(m.msg.points[0].positions)), topic
    assert all(np.all(np.isfinite(mc.pose_to_numpy(m.msg).position)) for m in out['command'])


def test_policy_latency_drops_requests_in_flight_like_the_async_runner(tmp_path, robot_bag):
    robot_bag(tmp_path / 'in', seconds=2.0)
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', SinePolicy(), ReplayConfig(policy_latency=0.35))
    r = report.runner
    # requests every 0.1 s, each inference 0.35 s: one in four runs, the others are dropped as busy
    assert r.dropped_busy >= 2 * r.submitted and report.chunks == r.completed <= r.submitted
    assert r.latency_p50 == pytest.approx(0.35)


class DiesPolicy(SinePolicy):
    """Answers for the first second, then every request fails (the policy process is gone)."""

    def infer(self, obs):
        if obs['timestamp'] > 1000.8:
            raise RuntimeError('policy died')
        return super().infer(obs)


def test_a_dead_policy_is_a_hold_on_a_fixed_pose(tmp_path, robot_bag):
    # the measured pose sinks 5 cm/s (a robot sagging at the workspace floor): the held target must not follow it
    robot_bag(tmp_path / 'in', seconds=3.0, pose_topic='franka_robot_state_broadcaster/current_pose', pose_drift=0.05)
    cfg = ReplayConfig(pose_topic='franka_robot_state_broadcaster/current_pose', tail=1.0)
    report = replay_bag(tmp_path / 'in', tmp_path / 'out', DiesPolicy(), cfg)
    assert report.safety_status.get('policy_lost', 0) > 100
    out = _by_topic(tmp_path / 'out')
    statuses = [mc.string_to_str(m.msg) for m in out['safety_status']]
    assert any(s.startswith('policy_lost: no action chunk for') for s in statuses)
    lost_at = next(m.time for m in out['safety_status'] if mc.string_to_str(m.msg).startswith('policy_lost'))
    held = np.array([mc.pose_to_numpy(m.msg).position for m in out['command'] if m.time > lost_at + 0.3])
    assert len(held) > 100 and np.ptp(held, axis=0).max() == 0.0  # a fixed pose, not re-derived from measurements


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


def test_cli_replay_that_produces_nothing_exits_non_zero(tmp_path, robot_bag, capsys):
    robot_bag(tmp_path / 'in', seconds=0.5, instruction=None)
    assert cli_main(['replay', str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--policy', 'zero']) == 1
    err = capsys.readouterr().err
    assert 'produced no action chunk' in err and "'no instruction'" in err and not (tmp_path / 'out').exists()
    assert cli_main(['replay', str(tmp_path / 'in'), '--out', str(tmp_path / 'out'), '--policy', 'zero',
                     '--set', 'camera.names=[wrist]']) == 1
    assert "its image topics: ['camera/third_person/image_raw']" in capsys.readouterr().err
