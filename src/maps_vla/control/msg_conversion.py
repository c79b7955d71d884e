"""THE message <-> numpy conversion module, for any object that has ROS field names.

Reading works on rclpy messages, rosbags dataclasses or anything duck-typed alike. Writing needs the message
classes, passed as `types`, which is one of:
    * a rosbags `Typestore` (`get_typestore(Stores.ROS2_JAZZY)`), whose `.types` maps 'pkg/msg/Name' -> class;
    * a mapping 'pkg/msg/Name' -> class;
    * a callable 'pkg/msg/Name' -> class, e.g. `rosidl_runtime_py.utilities.get_interface` under rclpy.
Nothing here imports rclpy or rosbags. Unbounded numeric arrays are given to rosbags dataclasses as numpy arrays
(its serializer needs them) and to rclpy messages as `array.array` (their setters accept it without a
per-element check); other classes get numpy arrays.

Conventions: times are float seconds; quaternions are (x, y, z, w) like geometry_msgs/Quaternion; colour images
handed to the policy are RGB uint8 (H, W, 3).
"""

from __future__ import annotations

import array
import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np

from maps_vla.control.chunk import ActionChunk

__all__ = [
    'IMAGE_ENCODINGS', 'MessageTypes', 'message_class', 'time_to_sec', 'sec_to_time', 'duration_to_sec',
    'sec_to_duration', 'stamp_of', 'make_header', 'image_to_numpy', 'image_to_rgb', 'numpy_to_image',
    'compressed_to_numpy', 'numpy_to_compressed', 'JointStateArrays', 'joint_state_to_numpy',
    'numpy_to_joint_state', 'trajectory_to_chunk', 'chunk_to_trajectory', 'PoseArrays', 'pose_to_numpy',
    'numpy_to_pose', 'string_to_str', 'str_to_string', 'multiarray_to_numpy', 'numpy_to_multiarray',
]

MessageTypes = Any  # Typestore | Mapping[str, type] | Callable[[str], type]; see the module docstring

# encoding -> (numpy dtype, channels). ROS encoding names are case-sensitive.
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4),
    'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1),
    'mono16': (np.dtype(np.uint16), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}
_TO_RGB = {'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB, 'bgra8': cv2.COLOR_BGRA2RGB,
           'mono8': cv2.COLOR_GRAY2RGB}
_COMPRESSED_FORMATS = {'jpeg': '.jpg', 'png': '.png'}
_NATIVE_BIG = sys.byteorder == 'big'


# --------------------------------------------------------------------------------------------- message classes
def message_class(types: MessageTypes, name: str) -> type:
    """The class for message type `name` ('sensor_msgs/msg/Image'; 'sensor_msgs/Image' is accepted too).

    Action and service parts use rosbags' names ('moveit_msgs/action/MoveGroup_Goal', 'pkg/srv/Name_Request'). A
    callable that does not know such a name (rosidl_runtime_py's get_interface: `moveit_msgs.action` exports only
    `MoveGroup`) is asked for the interface, 'moveit_msgs/action/MoveGroup', and the part is taken from it
    (`MoveGroup.Goal`).

    Raises:
        ValueError: `types` has no such message type.
        TypeError: `types` is neither a Typestore, a mapping nor a callable.
    """
    package, _, rest = name.partition('/')
    full = name if rest.startswith(('msg/', 'srv/', 'action/')) else f'{package}/msg/{rest}'
    table = getattr(types, 'types', None)
    if isinstance(table, Mapping):
        types = table
    if isinstance(types, Mapping):
        cls = types.get(full)
        if cls is None:
            raise ValueError(f'Message type {full!r} is not among the {len(types)} types given')
        return cls
    if callable(types):
        try:
            return types(full)
        except _LOOKUP_ERRORS as exc:
            part = _interface_part(full)
            if part is not None:
                try:
                    return getattr(types(part[0]), part[1])
                except _LOOKUP_ERRORS:
                    pass
            raise ValueError(f'Message type {full!r} could not be resolved: {exc}') from exc
    raise TypeError(f'types must be a rosbags Typestore, a mapping or a callable, got {type(types).__name__}')


_LOOKUP_ERRORS = (KeyError, LookupError, ImportError, AttributeError, ValueError)
_PARTS = {'action': ('Goal', 'Result', 'Feedback'), 'srv': ('Request', 'Response')}


def _interface_part(full: str) -> tuple[str, str] | None:
    """'pkg/action/Name_Goal' -> ('pkg/action/Name', 'Goal') (srv: _Request, _Response); None for anything else."""
    package, kind, rest = (full.split('/', 2) + ['', ''])[:3]
    for part in _PARTS.get(kind, ()):
        if rest.endswith(f'_{part}') and len(rest) > len(part) + 1:
            return f'{package}/{kind}/{rest[:-len(part) - 1]}', part
    return None


def _new(types: MessageTypes, msgtype: str, /, **fields: Any) -> Any:
    return message_class(types, msgtype)(**fields)


def _numeric_seq(types: MessageTypes, owner: str | type, values: np.ndarray, dtype: str) -> Any:
    """An unbounded numeric array for a field of message `owner` (a type name or class), in the form it expects."""
    arr = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
    cls = message_class(types, owner) if isinstance(owner, str) else owner
    if not dataclasses.is_dataclass(cls) and hasattr(cls, 'get_fields_and_field_types'):  # an rclpy class
        out = array.array('B' if dtype == 'uint8' else 'd')
        out.frombytes(arr.tobytes())
        return out
    return arr


def _as_bytes(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's `uint8[]` data (numpy array, bytes, array.array or list)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def _float_array(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


# ------------------------------------------------------------------------------------------------ time, header
def time_to_sec(t: Any) -> float:
    """builtin_interfaces/Time (sec, nanosec) -> float seconds."""
    return float(t.sec) + float(t.nanosec) * 1e-9


def duration_to_sec(d: Any) -> float:
    """builtin_interfaces/Duration (sec, nanosec) -> float seconds."""
    return time_to_sec(d)


def _split_ns(seconds: float) -> tuple[int, int]:
    if not math.isfinite(seconds):
        raise ValueError(f'Cannot convert non-finite time {seconds!r} to a ROS Time/Duration')
    sec, nanosec = divmod(round(seconds * 1e9), 1_000_000_000)
    return int(sec), int(nanosec)


def sec_to_time(types: MessageTypes, seconds: float) -> Any:
    """Float seconds -> builtin_interfaces/Time (nanosec in [0, 1e9), so negative times floor the seconds)."""
    sec, nanosec = _split_ns(seconds)
    return _new(types, 'builtin_interfaces/msg/Time', sec=sec, nanosec=nanosec)


def sec_to_duration(types: MessageTypes, seconds: float) -> Any:
    """Float seconds -> builtin_interfaces/Duration."""
    sec, nanosec = _split_ns(seconds)
    return _new(types, 'builtin_interfaces/msg/Duration', sec=sec, nanosec=nanosec)


def stamp_of(msg: Any) -> float:
    """`msg.header.stamp` in seconds."""
    return time_to_sec(msg.header.stamp)


def make_header(types: MessageTypes, stamp: float, frame_id: str = '') -> Any:
    """std_msgs/Header with `stamp` seconds and `frame_id`."""
    return _new(types, 'std_msgs/msg/Header', stamp=sec_to_time(types, stamp), frame_id=frame_id)


# ------------------------------------------------------------------------------------------------------ images
def image_to_numpy(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> array (H, W, C) or (H, W) for one channel, in the encoding's channel order.

    Honours `step` (row padding) and `is_bigendian`; the result may share memory with `msg.data`.

    Raises:
        ValueError: unknown encoding, non-positive size, `step` shorter than a row, or data of the wrong length.
    """
    encoding = str(msg.encoding)
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f'Image encoding {encoding!r} is not supported; supported: {", ".join(IMAGE_ENCODINGS)}')
    dtype, channels = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f'Image size {width}x{height} is empty; width and height must be > 0')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f'Image step {step} is shorter than one {encoding!r} row of width {width} '
                         f'({width} px * {channels * dtype.itemsize} bytes = {row_bytes} bytes)')
    data = _as_bytes(msg.data)
    if data.size != step * height:
        raise ValueError(f'Image data has {data.size} bytes but step * height = {step} * {height} = '
                         f'{step * height} ({encoding!r}, {width}x{height})')
    rows = data.reshape(height, step)
    if step != row_bytes:
        rows = np.ascontiguousarray(rows[:, :row_bytes])
    big = bool(msg.is_bigendian) and dtype.itemsize > 1
    image = rows.view(dtype.newbyteorder('>' if big else '<') if dtype.itemsize > 1 else dtype)
    if dtype.itemsize > 1 and big != _NATIVE_BIG:
        image = image.astype(dtype)
    return image.reshape(height, width) if channels == 1 else image.reshape(height, width, channels)


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image of a colour or mono8 encoding -> RGB uint8 (H, W, 3).

    Raises:
        ValueError: as `image_to_numpy`, or a depth encoding (mono16, 16UC1, 32FC1) that has no RGB meaning.
    """
    image = image_to_numpy(msg)
    encoding = str(msg.encoding)
    if encoding == 'rgb8':
        return image
    if encoding not in _TO_RGB:
        raise ValueError(f'Image encoding {encoding!r} is not a colour image; the policy needs rgb8, bgr8, '
                         'rgba8, bgra8 or mono8')
    return cv2.cvtColor(np.ascontiguousarray(image), _TO_RGB[encoding])


def numpy_to_image(types: MessageTypes, image: np.ndarray, encoding: str = 'rgb8', stamp: float = 0.0,
                   frame_id: str = '') -> Any:
    """Array -> sensor_msgs/Image with no row padding, in this machine's byte order.

    Args:
        image: (H, W, C) or (H, W) with the dtype and channel count of `encoding` (e.g. uint8 (H, W, 3) for rgb8).

    Raises:
        ValueError: unknown encoding, or an array whose dtype or shape does not fit it.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f'Image encoding {encoding!r} is not supported; supported: {", ".join(IMAGE_ENCODINGS)}')
    dtype, channels = IMAGE_ENCODINGS[encoding]
    image = np.asarray(image)
    want = '(H, W)' if channels == 1 else f'(H, W, {channels})'
    shape_ok = image.ndim == 2 if channels == 1 else image.ndim == 3 and image.shape[2] == channels
    if image.dtype != dtype or not shape_ok or image.size == 0:
        raise ValueError(f'Encoding {encoding!r} needs a non-empty {dtype} array {want}, got {image.dtype} '
                         f'{image.shape}')
    height, width = image.shape[:2]
    return _new(types, 'sensor_msgs/msg/Image', header=make_header(types, stamp, frame_id), height=height,
                width=width, encoding=encoding, is_bigendian=int(_NATIVE_BIG and dtype.itemsize > 1),
                step=width * channels * dtype.itemsize,
                data=_numeric_seq(types, 'sensor_msgs/msg/Image', np.ascontiguousarray(image).view(np.uint8),
                                  'uint8'))


def compressed_to_numpy(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> RGB uint8 (H, W, 3), or (H, W) for a one-channel image.

    Raises:
        ValueError: empty data, the `compressedDepth` transport, or bytes OpenCV cannot decode.
    """
    fmt = str(msg.format)
    if 'compresseddepth' in fmt.lower():
        raise ValueError(f'CompressedImage format {fmt!r} (compressedDepth) is not supported; use png or jpeg')
    data = _as_bytes(msg.data)
    if data.size == 0:
        raise ValueError(f'CompressedImage (format {fmt!r}) has no data')
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'CompressedImage (format {fmt!r}, {data.size} bytes) could not be decoded by OpenCV')
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def numpy_to_compressed(types: MessageTypes, image: np.ndarray, fmt: str = 'jpeg', stamp: float = 0.0,
                        frame_id: str = '', quality: int = 95) -> Any:
    """RGB uint8 (H, W, 3) or mono uint8/uint16 (H, W) -> sensor_msgs/CompressedImage.

    The `format` field follows image_transport ('rgb8; jpeg compressed bgr8').

    Raises:
        ValueError: unknown `fmt`, an unsupported array, or 16-bit data for jpeg.
    """
    if fmt not in _COMPRESSED_FORMATS:
        raise ValueError(f'CompressedImage format {fmt!r} is not supported; use one of {sorted(_COMPRESSED_FORMATS)}')
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        encoding, bgr = 'rgb8', cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        fmt_field = f'rgb8; {fmt} compressed bgr8'
    elif image.ndim == 2 and (image.dtype == np.uint8 or image.dtype == np.uint16 and fmt == 'png'):
        encoding, bgr = ('mono8' if image.dtype == np.uint8 else '16UC1'), image
        fmt_field = f'{encoding}; {fmt} compressed {encoding}'
    else:
        raise ValueError(f'Cannot compress a {image.dtype} {image.shape} array as {fmt!r}; give RGB uint8 '
                         '(H, W, 3), mono uint8 (H, W), or uint16 (H, W) for png')
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == 'jpeg' else []
    ok, buf = cv2.imencode(_COMPRESSED_FORMATS[fmt], bgr, params)
    if not ok:
        raise ValueError(f'OpenCV could not encode a {encoding} {image.shape} image as {fmt!r}')
    return _new(types, 'sensor_msgs/msg/CompressedImage', header=make_header(types, stamp, frame_id),
                format=fmt_field, data=_numeric_seq(types, 'sensor_msgs/msg/CompressedImage', buf, 'uint8'))


# -------------------------------------------------------------------------------------------------- joint state
class JointStateArrays(NamedTuple):
    """A JointState as arrays; velocity/effort are None where the message leaves them empty."""

    names: tuple[str, ...]
    position: np.ndarray | None  # float64 (N,)
    velocity: np.ndarray | None  # float64 (N,)
    effort: np.ndarray | None  # float64 (N,)
    stamp: float


def joint_state_to_numpy(msg: Any, joint_names: Sequence[str] | None = None) -> JointStateArrays:
    """sensor_msgs/JointState -> arrays, reordered to `joint_names` when given (other joints are dropped).

    Raises:
        ValueError: duplicate names, an array whose length is neither 0 nor len(name), or joints of
            `joint_names` missing from the message (the error names them and the joints present).
    """
    names = tuple(str(n) for n in msg.name)
    if len(set(names)) != len(names):
        raise ValueError(f'JointState has duplicate joint names: {list(names)}')
    fields = {}
    for field in ('position', 'velocity', 'effort'):
        values = _float_array(getattr(msg, field))
        if values.size not in (0, len(names)):
            raise ValueError(f'JointState.{field} has {values.size} values for {len(names)} names')
        fields[field] = values if values.size else None
    if joint_names is not None:
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in joint_names if n not in index]
        if missing:
            raise ValueError(f'JointState lacks joints {missing}; it has {list(names)}')
        order = np.fromiter((index[n] for n in joint_names), dtype=np.intp, count=len(joint_names))
        fields = {k: None if v is None else v[order] for k, v in fields.items()}
        names = tuple(joint_names)
    return JointStateArrays(names, fields['position'], fields['velocity'], fields['effort'], stamp_of(msg))


def numpy_to_joint_state(types: MessageTypes, names: Sequence[str], position: Any, velocity: Any = None,
                         effort: Any = None, stamp: float = 0.0, frame_id: str = '') -> Any:
    """Arrays -> sensor_msgs/JointState (velocity/effort left empty when None).

    Raises:
        ValueError: an array whose length differs from len(names).
    """
    arrays = {}
    for field, values in (('position', position), ('velocity', velocity), ('effort', effort)):
        values = np.zeros(0) if values is None else _float_array(values)
        if values.size not in (0, len(names)):
            raise ValueError(f'JointState {field} has {values.size} values for {len(names)} names')
        arrays[field] = _numeric_seq(types, 'sensor_msgs/msg/JointState', values, 'float64')
    return _new(types, 'sensor_msgs/msg/JointState', header=make_header(types, stamp, frame_id),
                name=[str(n) for n in names], **arrays)


# ----------------------------------------------------------------------------------------- trajectory <-> chunk
def trajectory_to_chunk(msg: Any, dt: float | None = None, rtol: float = 1e-3) -> ActionChunk:
    """trajectory_msgs/JointTrajectory -> ActionChunk (stamp = header.stamp + points[0].time_from_start).

    Args:
        dt: step for a one-point trajectory; with two or more points it is read from time_from_start.
        rtol: allowed relative spread of the point spacing around its mean.

    Raises:
        ValueError: no points, a point whose positions do not match joint_names, non-uniform or non-increasing
            time_from_start, or a single point without `dt`.
    """
    names = tuple(str(n) for n in msg.joint_names)
    points = list(msg.points)
    if not points:
        raise ValueError('JointTrajectory has no points')
    actions = np.empty((len(points), len(names)))
    for i, point in enumerate(points):
        positions = _float_array(point.positions)
        if positions.size != len(names):
            raise ValueError(f'JointTrajectory point {i} has {positions.size} positions for {len(names)} '
                             f'joint_names')
        actions[i] = positions
    times = np.array([duration_to_sec(p.time_from_start) for p in points])
    if len(points) > 1:
        steps = np.diff(times)
        mean = float(steps.mean())
        if mean <= 0 or np.any(np.abs(steps - mean) > rtol * mean):
            raise ValueError(f'JointTrajectory time_from_start is not uniformly increasing: {times.tolist()}')
        dt = mean
    elif dt is None:
        raise ValueError('A one-point JointTrajectory needs the step dt to become an ActionChunk')
    return ActionChunk(stamp=stamp_of(msg) + float(times[0]), actions=actions, dt=float(dt), names=names)


def chunk_to_trajectory(types: MessageTypes, chunk: ActionChunk, names: Sequence[str] | None = None, *,
                        velocities: bool = False, accelerations: bool = False, frame_id: str = '') -> Any:
    """ActionChunk -> trajectory_msgs/JointTrajectory: header.stamp = chunk.stamp, points[i] at i * dt.

    Args:
        names: joint_names; defaults to chunk.names, else 'action_0', 'action_1', ...
        velocities: also fill velocities by finite differences (np.gradient; zeros for one point), which makes
            joint_trajectory_controller interpolate cubically.
        accelerations: also fill accelerations (finite differences of those velocities).
    """
    names = list(names if names is not None else chunk.names or [f'action_{i}' for i in range(chunk.dim)])
    if len(names) != chunk.dim:
        raise ValueError(f'{len(names)} joint names for {chunk.dim} action dims: {names}')
    point_cls = message_class(types, 'trajectory_msgs/msg/JointTrajectoryPoint')
    duration_cls = message_class(types, 'builtin_interfaces/msg/Duration')
    actions = chunk.actions
    empty = np.zeros(0)
    vel = acc = None
    if velocities or accelerations:
        vel = np.gradient(actions, chunk.dt, axis=0) if chunk.horizon > 1 else np.zeros_like(actions)
        acc = np.gradient(vel, chunk.dt, axis=0) if chunk.horizon > 1 else np.zeros_like(actions)
    points = []
    for i in range(chunk.horizon):
        sec, nanosec = _split_ns(i * chunk.dt)
        points.append(point_cls(
            positions=_numeric_seq(types, point_cls, actions[i], 'float64'),
            velocities=_numeric_seq(types, point_cls, vel[i] if velocities else empty, 'float64'),
            accelerations=_numeric_seq(types, point_cls, acc[i] if accelerations else empty, 'float64'),
            effort=_numeric_seq(types, point_cls, empty, 'float64'),
            time_from_start=duration_cls(sec=sec, nanosec=nanosec)))
    return _new(types, 'trajectory_msgs/msg/JointTrajectory', header=make_header(types, chunk.stamp, frame_id),
                joint_names=names, points=points)


# ---------------------------------------------------------------------------------------------------- pose
class PoseArrays(NamedTuple):
    """A PoseStamped as arrays."""

    position: np.ndarray  # float64 (3,), metres
    quaternion: np.ndarray  # float64 (4,), (x, y, z, w)
    stamp: float
    frame_id: str


def pose_to_numpy(msg: Any) -> PoseArrays:
    """geometry_msgs/PoseStamped -> (position, quaternion xyzw, stamp, frame_id)."""
    p, q = msg.pose.position, msg.pose.orientation
    return PoseArrays(np.array([p.x, p.y, p.z], dtype=np.float64), np.array([q.x, q.y, q.z, q.w], dtype=np.float64),
                      stamp_of(msg), str(msg.header.frame_id))


def numpy_to_pose(types: MessageTypes, position: Any, quaternion: Any, stamp: float = 0.0,
                  frame_id: str = '') -> Any:
    """(position (3,), quaternion (4,) xyzw) -> geometry_msgs/PoseStamped.

    Raises:
        ValueError: wrong lengths.
    """
    p, q = _float_array(position), _float_array(quaternion)
    if p.size != 3 or q.size != 4:
        raise ValueError(f'A pose needs 3 position and 4 quaternion values, got {p.size} and {q.size}')
    pose = _new(types, 'geometry_msgs/msg/Pose',
                position=_new(types, 'geometry_msgs/msg/Point', x=float(p[0]), y=float(p[1]), z=float(p[2])),
                orientation=_new(types, 'geometry_msgs/msg/Quaternion', x=float(q[0]), y=float(q[1]),
                                 z=float(q[2]), w=float(q[3])))
    return _new(types, 'geometry_msgs/msg/PoseStamped', header=make_header(types, stamp, frame_id), pose=pose)


# ----------------------------------------------------------------------------------------- string, multiarray
def string_to_str(msg: Any) -> str:
    """std_msgs/String -> str."""
    return str(msg.data)


def str_to_string(types: MessageTypes, text: str) -> Any:
    """str -> std_msgs/String."""
    return _new(types, 'std_msgs/msg/String', data=str(text))


def multiarray_to_numpy(msg: Any) -> np.ndarray:
    """std_msgs/Float64MultiArray -> float64 array shaped by layout.dim (1-D when the layout is empty).

    Raises:
        ValueError: a layout whose sizes do not fit the data.
    """
    data = _float_array(msg.data)[int(msg.layout.data_offset):]
    shape = tuple(int(d.size) for d in msg.layout.dim)
    if not shape:
        return data
    if int(np.prod(shape)) != data.size:
        raise ValueError(f'Float64MultiArray layout {shape} does not fit its {data.size} values')
    return data.reshape(shape)


def numpy_to_multiarray(types: MessageTypes, values: Any, labels: Sequence[str] | None = None) -> Any:
    """Array -> std_msgs/Float64MultiArray with a row-major layout (dim[i].stride = prod(shape[i:]))."""
    values = np.asarray(values, dtype=np.float64)
    shape = values.shape or (1,)
    labels = list(labels) if labels is not None else [''] * len(shape)
    if len(labels) != len(shape):
        raise ValueError(f'{len(labels)} labels for a {len(shape)}-D array')
    dims = [_new(types, 'std_msgs/msg/MultiArrayDimension', label=labels[i], size=int(shape[i]),
                 stride=int(np.prod(shape[i:]))) for i in range(len(shape))]
    layout = _new(types, 'std_msgs/msg/MultiArrayLayout', dim=dims, data_offset=0)
    return _new(types, 'std_msgs/msg/Float64MultiArray', layout=layout,
                data=_numeric_seq(types, 'std_msgs/msg/Float64MultiArray', values, 'float64'))
