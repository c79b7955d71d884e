import array
import types as pytypes

import cv2
import numpy as np
import pytest

from maps_vla.control import msg_conversion as mc
from maps_vla.control.chunk import ActionChunk

RNG = np.random.default_rng(0)


def _cdr_roundtrip(typestore, msg):
    """The message serializes as CDR (what a bag or DDS carries) and comes back equal in content."""
    return typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def _random(dtype, shape):
    if np.dtype(dtype).kind == 'f':
        return RNG.standard_normal(shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


@pytest.mark.parametrize('encoding', sorted(mc.IMAGE_ENCODINGS))
def test_image_roundtrip_every_encoding(typestore, encoding):
    dtype, channels = mc.IMAGE_ENCODINGS[encoding]
    image = _random(dtype, (5, 7) if channels == 1 else (5, 7, channels))
    msg = _cdr_roundtrip(typestore, mc.numpy_to_image(typestore, image, encoding, stamp=12.5, frame_id='cam'))
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (5, 7, encoding, 'cam')
    assert mc.stamp_of(msg) == 12.5
    back = mc.image_to_numpy(msg)
    assert back.dtype == dtype and np.array_equal(back, image)


@pytest.mark.parametrize('encoding', ['rgb8', '16UC1', '32FC1'])
def test_image_row_padding_and_big_endian(typestore, encoding):
    dtype, channels = mc.IMAGE_ENCODINGS[encoding]
    image = _random(dtype, (4, 3) if channels == 1 else (4, 3, channels))
    big = dtype.itemsize > 1
    rows = image.astype(dtype.newbyteorder('>')) if big else image
    row_bytes = 3 * channels * dtype.itemsize
    padded = np.zeros((4, row_bytes + 6), np.uint8)
    padded[:, :row_bytes] = rows.reshape(4, -1).view(np.uint8)
    cls = typestore.types['sensor_msgs/msg/Image']
    msg = cls(header=mc.make_header(typestore, 0.0), height=4, width=3, encoding=encoding, is_bigendian=int(big),
              step=row_bytes + 6, data=padded.reshape(-1))
    back = mc.image_to_numpy(msg)
    assert back.dtype == dtype and np.array_equal(back, image)


def test_image_to_rgb_converts_colour_orders(typestore):
    rgb = _random(np.uint8, (6, 8, 3))
    rgba = np.dstack([rgb, np.full((6, 8), 255, np.uint8)])
    cases = {'rgb8': rgb, 'bgr8': rgb[:, :, ::-1], 'rgba8': rgba, 'bgra8': rgba[:, :, [2, 1, 0, 3]]}
    for encoding, data in cases.items():
        out = mc.image_to_rgb(mc.numpy_to_image(typestore, np.ascontiguousarray(data), encoding))
        assert np.array_equal(out, rgb), encoding
    grey = _random(np.uint8, (6, 8))
    assert np.array_equal(mc.image_to_rgb(mc.numpy_to_image(typestore, grey, 'mono8')), np.dstack([grey] * 3))
    with pytest.raises(ValueError, match="'16UC1' is not a colour image"):
        mc.image_to_rgb(mc.numpy_to_image(typestore, _random(np.uint16, (2, 2)), '16UC1'))


def _image(typestore, **overrides):
    fields = dict(header=mc.make_header(typestore, 0.0), height=2, width=3, encoding='rgb8', is_bigendian=0,
                  step=9, data=np.zeros(18, np.uint8))
    fields.update(overrides)
    return typestore.types['sensor_msgs/msg/Image'](**fields)


@pytest.mark.parametrize('overrides, message', [
    (dict(step=8), r"step 8 is shorter than one 'rgb8' row of width 3 \(3 px \* 3 bytes = 9 bytes\)"),
    (dict(data=np.zeros(17, np.uint8)), r'data has 17 bytes but step \* height = 9 \* 2 = 18'),
    (dict(data=np.zeros(27, np.uint8)), r'data has 27 bytes but step \* height = 9 \* 2 = 18'),
    (dict(encoding='yuv422'), r"encoding 'yuv422' is not supported; supported: rgb8, bgr8"),
    (dict(encoding='RGB8'), r"encoding 'RGB8' is not supported"),
    (dict(height=0, data=np.zeros(0, np.uint8)), r'size 3x0 is empty'),
])
def test_malformed_images_are_rejected_with_the_reason(typestore, overrides, message):
    with pytest.raises(ValueError, match=message):
        mc.image_to_numpy(_image(typestore, **overrides))


def test_numpy_to_image_checks_the_array_against_the_encoding(typestore):
    with pytest.raises(ValueError, match=r"'rgb8' needs a non-empty uint8 array \(H, W, 3\), got float32"):
        mc.numpy_to_image(typestore, np.zeros((2, 2, 3), np.float32), 'rgb8')
    with pytest.raises(ValueError, match=r"'mono16' needs a non-empty uint16 array \(H, W\)"):
        mc.numpy_to_image(typestore, np.zeros((2, 2, 1), np.uint16), 'mono16')


def test_reading_duck_typed_rclpy_like_messages():
    """rclpy keeps uint8[] as array.array and strings as str; any object with the ROS field names works."""
    image = _random(np.uint8, (2, 3, 3))
    stamp = pytypes.SimpleNamespace(sec=3, nanosec=250_000_000)
    header = pytypes.SimpleNamespace(stamp=stamp, frame_id='f')
    for data in (array.array('B', image.tobytes()), image.tobytes(), list(image.reshape(-1))):
        msg = pytypes.SimpleNamespace(header=header, height=2, width=3, encoding='bgr8', is_bigendian=0, step=9,
                                      data=data)
        assert np.array_equal(mc.image_to_rgb(msg), image[:, :, ::-1])
    js = pytypes.SimpleNamespace(header=header, name=['b', 'a'], position=array.array('d', [2.0, 1.0]),
                                 velocity=array.array('d'), effort=[])
    out = mc.joint_state_to_numpy(js, ['a', 'b'])
    assert out.position.tolist() == [1.0, 2.0] and out.velocity is None and out.stamp == 3.25


class _RclpyLike:
    """Stands in for an rclpy message class: keyword construction, get_fields_and_field_types, array.array."""

    def __init__(self, **fields):
        for key, value in fields.items():
            if isinstance(value, np.ndarray):
                raise AssertionError(f'rclpy setters reject numpy arrays for {key}')
            setattr(self, key, value)

    @classmethod
    def get_fields_and_field_types(cls):
        return {}


def test_writing_rclpy_like_classes_gets_array_array():
    classes = {name: type(name.rsplit('/', 1)[1], (_RclpyLike,), {}) for name in (
        'builtin_interfaces/msg/Time', 'builtin_interfaces/msg/Duration', 'std_msgs/msg/Header',
        'sensor_msgs/msg/Image', 'sensor_msgs/msg/JointState', 'trajectory_msgs/msg/JointTrajectory',
        'trajectory_msgs/msg/JointTrajectoryPoint')}
    factory = classes.__getitem__  # like rosidl_runtime_py.utilities.get_message
    image = _random(np.uint8, (2, 3, 3))
    msg = mc.numpy_to_image(factory, image, 'rgb8', stamp=1.5)
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    assert np.array_equal(mc.image_to_numpy(msg), image)
    js = mc.numpy_to_joint_state(factory, ['a'], [0.5])
    assert isinstance(js.position, array.array) and js.position.typecode == 'd' and len(js.velocity) == 0
    traj = mc.chunk_to_trajectory(factory, ActionChunk(2.0, np.ones((3, 2)), 0.1))
    assert mc.trajectory_to_chunk(traj).actions.tolist() == np.ones((3, 2)).tolist()


def test_message_class_lookup(typestore):
    cls = typestore.types['sensor_msgs/msg/Image']
    assert mc.message_class(typestore, 'sensor_msgs/Image') is cls
    assert mc.message_class({'sensor_msgs/msg/Image': cls}, 'sensor_msgs/msg/Image') is cls
    assert mc.message_class(typestore.types.__getitem__, 'sensor_msgs/msg/Image') is cls
    with pytest.raises(ValueError, match="'foo_msgs/msg/Bar' is not among"):
        mc.message_class(typestore, 'foo_msgs/msg/Bar')
    with pytest.raises(ValueError, match="'foo_msgs/msg/Bar' could not be resolved"):
        mc.message_class(typestore.types.__getitem__, 'foo_msgs/msg/Bar')
    with pytest.raises(TypeError, match='Typestore, a mapping or a callable'):
        mc.message_class(42, 'sensor_msgs/msg/Image')


def test_message_class_takes_action_and_service_parts_from_their_interface():
    """rosidl_runtime_py resolves 'moveit_msgs/action/MoveGroup' but not 'moveit_msgs/action/MoveGroup_Goal' (the
    rosbags name the MoveIt reset builder uses): every MoveGroup reset failed on a real Jazzy (issue 17)."""
    class MoveGroup:
        class Goal:
            pass

    class Trigger:
        class Request:
            pass

    known = {'moveit_msgs/action/MoveGroup': MoveGroup, 'std_srvs/srv/Trigger': Trigger}

    def get_interface(name):  # like rosidl_runtime_py's: getattr on the interface module
        if name not in known:
            raise AttributeError(f"module has no attribute {name.rsplit('/', 1)[1]!r}")
        return known[name]

    assert mc.message_class(get_interface, 'moveit_msgs/action/MoveGroup_Goal') is MoveGroup.Goal
    assert mc.message_class(get_interface, 'std_srvs/srv/Trigger_Request') is Trigger.Request
    for missing in ('moveit_msgs/action/MoveGroup_Result', 'moveit_msgs/msg/MoveGroup_Goal',
                    'moveit_msgs/action/_Goal'):
        with pytest.raises(ValueError, match='could not be resolved'):
            mc.message_class(get_interface, missing)


@pytest.mark.parametrize('fmt', ['jpeg', 'png'])
def test_compressed_roundtrip(typestore, fmt):
    y, x = np.mgrid[0:32, 0:48]
    rgb = np.dstack([x * 5, y * 7, (x + y) * 3]).astype(np.uint8)  # smooth, so jpeg stays close
    msg = _cdr_roundtrip(typestore, mc.numpy_to_compressed(typestore, rgb, fmt, stamp=2.0))
    assert msg.format == f'rgb8; {fmt} compressed bgr8' and mc.stamp_of(msg) == 2.0
    back = mc.compressed_to_numpy(msg)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    if fmt == 'png':
        assert np.array_equal(back, rgb)
    else:
        assert np.abs(back.astype(int) - rgb).mean() < 3


def test_compressed_mono16_png_and_bad_data(typestore):
    depth = _random(np.uint16, (8, 9))
    assert np.array_equal(mc.compressed_to_numpy(mc.numpy_to_compressed(typestore, depth, 'png')), depth)
    with pytest.raises(ValueError, match="Cannot compress a uint16 .* as 'jpeg'"):
        mc.numpy_to_compressed(typestore, depth, 'jpeg')
    with pytest.raises(ValueError, match="format 'bmp' is not supported"):
        mc.numpy_to_compressed(typestore, depth, 'bmp')
    cls = typestore.types['sensor_msgs/msg/CompressedImage']
    header = mc.make_header(typestore, 0.0)
    with pytest.raises(ValueError, match=r"format 'jpeg', 5 bytes\) could not be decoded by OpenCV"):
        mc.compressed_to_numpy(cls(header=header, format='jpeg', data=np.arange(5, dtype=np.uint8)))
    with pytest.raises(ValueError, match='has no data'):
        mc.compressed_to_numpy(cls(header=header, format='png', data=np.zeros(0, np.uint8)))
    with pytest.raises(ValueError, match='compressedDepth'):
        mc.compressed_to_numpy(cls(header=header, format='16UC1; compressedDepth png', data=np.ones(9, np.uint8)))


def test_compressed_decodes_like_opencv(typestore):
    bgr = _random(np.uint8, (10, 12, 3))
    ok, buf = cv2.imencode('.png', bgr)
    msg = typestore.types['sensor_msgs/msg/CompressedImage'](header=mc.make_header(typestore, 0.0), format='png',
                                                             data=buf.reshape(-1))
    assert np.array_equal(mc.compressed_to_numpy(msg), bgr[:, :, ::-1])


def test_joint_state_roundtrip_and_reordering(typestore):
    names = ['j1', 'j2', 'j3']
    msg = _cdr_roundtrip(typestore, mc.numpy_to_joint_state(typestore, names, [1, 2, 3], [4, 5, 6], None, stamp=7.0))
    full = mc.joint_state_to_numpy(msg)
    assert full.names == tuple(names) and full.position.tolist() == [1, 2, 3] and full.effort is None
    assert full.stamp == 7.0
    sub = mc.joint_state_to_numpy(msg, ['j3', 'j1'])
    assert sub.names == ('j3', 'j1') and sub.position.tolist() == [3, 1] and sub.velocity.tolist() == [6, 4]
    with pytest.raises(ValueError, match=r"JointState lacks joints \['fr3_joint1'\]; it has \['j1', 'j2', 'j3'\]"):
        mc.joint_state_to_numpy(msg, ['j1', 'fr3_joint1'])
    with pytest.raises(ValueError, match='3 values for 2 names'):
        mc.numpy_to_joint_state(typestore, ['a', 'b'], [1, 2, 3])
    bad = typestore.types['sensor_msgs/msg/JointState'](header=msg.header, name=['a', 'a'], position=np.zeros(2),
                                                        velocity=np.zeros(0), effort=np.zeros(0))
    with pytest.raises(ValueError, match='duplicate joint names'):
        mc.joint_state_to_numpy(bad)


def test_trajectory_roundtrip_with_finite_differences(typestore):
    dt = 0.1
    t = np.arange(6) * dt
    actions = np.stack([2.0 * t, t ** 2], axis=1)  # velocity 2 and 2t, acceleration 0 and 2
    chunk = ActionChunk(stamp=50.25, actions=actions, dt=dt, names=('x', 'y'))
    msg = _cdr_roundtrip(typestore, mc.chunk_to_trajectory(typestore, chunk, velocities=True, accelerations=True))
    assert list(msg.joint_names) == ['x', 'y'] and mc.stamp_of(msg) == 50.25
    assert [mc.duration_to_sec(p.time_from_start) for p in msg.points] == pytest.approx(t)
    vel = np.array([p.velocities for p in msg.points])
    assert vel[:, 0] == pytest.approx(2.0) and vel[1:-1, 1] == pytest.approx(2 * t[1:-1])
    acc = np.array([p.accelerations for p in msg.points])
    assert acc[2:-2, 0] == pytest.approx(0.0, abs=1e-9) and acc[2:-2, 1] == pytest.approx(2.0)
    back = mc.trajectory_to_chunk(msg)
    assert back.stamp == 50.25 and back.dt == pytest.approx(dt) and back.names == ('x', 'y')
    assert np.array_equal(back.actions, actions)
    plain = mc.chunk_to_trajectory(typestore, chunk)
    assert len(plain.points[0].velocities) == 0 and len(plain.points[0].accelerations) == 0


def test_trajectory_errors(typestore):
    one = mc.chunk_to_trajectory(typestore, ActionChunk(1.0, np.ones((1, 2)), 0.05))
    assert list(one.joint_names) == ['action_0', 'action_1']
    with pytest.raises(ValueError, match='one-point JointTrajectory needs the step dt'):
        mc.trajectory_to_chunk(one)
    assert mc.trajectory_to_chunk(one, dt=0.05).dt == 0.05
    msg = mc.chunk_to_trajectory(typestore, ActionChunk(1.0, np.ones((3, 2)), 0.1))
    msg.points[2].time_from_start = mc.sec_to_duration(typestore, 0.5)
    with pytest.raises(ValueError, match='not uniformly increasing'):
        mc.trajectory_to_chunk(msg)
    msg.points[2].time_from_start = mc.sec_to_duration(typestore, 0.2)
    msg.points[1].positions = np.ones(3)
    with pytest.raises(ValueError, match='point 1 has 3 positions for 2 joint_names'):
        mc.trajectory_to_chunk(msg)
    with pytest.raises(ValueError, match='3 joint names for 2 action dims'):
        mc.chunk_to_trajectory(typestore, ActionChunk(1.0, np.ones((3, 2)), 0.1), names=['a', 'b', 'c'])


def test_pose_string_multiarray_roundtrip(typestore):
    pose = _cdr_roundtrip(typestore, mc.numpy_to_pose(typestore, [0.1, 0.2, 0.3], [0, 0, 0.6, 0.8], 3.5, 'base'))
    out = mc.pose_to_numpy(pose)
    assert out.position.tolist() == [0.1, 0.2, 0.3] and out.quaternion.tolist() == [0, 0, 0.6, 0.8]
    assert (out.stamp, out.frame_id) == (3.5, 'base')
    with pytest.raises(ValueError, match='3 position and 4 quaternion values, got 2 and 4'):
        mc.numpy_to_pose(typestore, [0, 0], [0, 0, 0, 1])
    text = _cdr_roundtrip(typestore, mc.str_to_string(typestore, 'pick up the red cube ✓'))
    assert mc.string_to_str(text) == 'pick up the red cube ✓'
    values = np.arange(6.0).reshape(2, 3)
    arr = _cdr_roundtrip(typestore, mc.numpy_to_multiarray(typestore, values, ['rows', 'cols']))
    assert [(d.label, d.size, d.stride) for d in arr.layout.dim] == [('rows', 2, 6), ('cols', 3, 3)]
    assert np.array_equal(mc.multiarray_to_numpy(arr), values)
    arr.layout.dim[0].size = 5
    with pytest.raises(ValueError, match=r'layout \(5, 3\) does not fit its 6 values'):
        mc.multiarray_to_numpy(arr)


@pytest.mark.parametrize('seconds, sec, nanosec', [
    (0.0, 0, 0), (1.5, 1, 500_000_000), (1.9999999999, 2, 0), (-0.25, -1, 750_000_000),
    (1_700_000_000.123456, 1_700_000_000, 123_456_001),
])
def test_time_and_duration(typestore, seconds, sec, nanosec):
    t = mc.sec_to_time(typestore, seconds)
    assert t.sec == sec and abs(t.nanosec - nanosec) <= 300  # float64 seconds resolve ~240 ns at epoch scale
    assert mc.time_to_sec(t) == pytest.approx(seconds, abs=1e-6)
    d = mc.sec_to_duration(typestore, seconds)
    assert mc.duration_to_sec(d) == pytest.approx(seconds, abs=1e-6)
    with pytest.raises(ValueError, match='non-finite time nan'):
        mc.sec_to_time(typestore, float('nan'))
