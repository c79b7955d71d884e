"""Fixtures for the control tests: rosbags typestores and a builder of real ROS 2 bags (no hand-made bytes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_io import BagWriter
from maps_vla.control.franka_limits import FR3_HOME, joint_limits

CAMERA_TOPIC = 'camera/third_person/image_raw'
JOINT_NAMES = list(joint_limits('fr3').names) + ['fr3_finger_joint1', 'fr3_finger_joint2']


@pytest.fixture(scope='session')
def typestore():
    return get_typestore(Stores.ROS2_JAZZY)


def write_robot_bag(path: Path, storage: str = 'sqlite3', seconds: float = 2.0, t0: float = 1000.0,
                    camera_hz: float = 15.0, joint_hz: float = 50.0, instruction: str | None = 'pick up the cube',
                    compressed: bool = False, bad_image_at: tuple[int, ...] = (), size: tuple[int, int] = (64, 48),
                    pose_topic: str | None = None, pose_drift: float = 0.0) -> dict[str, int]:
    """A bag like a robot recording: camera frames (bgr8), joint_states (FR3 + fingers), an instruction.

    Images number `bad_image_at` get a wrong `step`; the measured pose (if any) sinks at `pose_drift` m/s. Returns the
    messages written per topic.
    """
    rng = np.random.default_rng(0)
    width, height = size
    events: list[tuple[float, str, int]] = []
    events += [(t0 + i / camera_hz, 'camera', i) for i in range(int(seconds * camera_hz))]
    events += [(t0 + i / joint_hz + 1e-4, 'joints', i) for i in range(int(seconds * joint_hz))]
    if instruction is not None:
        events.append((t0, 'instruction', 0))
    if pose_topic:
        events += [(t0 + i / joint_hz + 2e-4, 'pose', i) for i in range(int(seconds * joint_hz))]
    events.sort()
    camera_topic = CAMERA_TOPIC + ('/compressed' if compressed else '')
    with BagWriter(path, storage=storage) as w:
        w.add_topic(camera_topic, 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image',
                    'sensor_data')
        w.add_topic('joint_states', 'sensor_msgs/msg/JointState')
        if instruction is not None:
            w.add_topic('instruction', 'std_msgs/msg/String')
        if pose_topic:
            w.add_topic(pose_topic, 'geometry_msgs/msg/PoseStamped', 'sensor_data')
        for t, kind, i in events:
            ns = round(t * 1e9)
            if kind == 'camera':
                rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                if compressed:
                    msg = mc.numpy_to_compressed(w.types, rgb, 'jpeg', stamp=t)
                else:
                    msg = mc.numpy_to_image(w.types, rgb[:, :, ::-1].copy(), 'bgr8', stamp=t, frame_id='cam')
                    if i in bad_image_at:
                        msg.step = width  # one byte per pixel: too short for bgr8
                w.write(camera_topic, msg, ns)
            elif kind == 'joints':
                q = np.asarray(FR3_HOME) + 0.01 * np.sin(t)
                w.write('joint_states', mc.numpy_to_joint_state(w.types, JOINT_NAMES, [*q, 0.04, 0.04],
                                                                np.zeros(9), stamp=t), ns)
            elif kind == 'pose':
                z = 0.4 - pose_drift * (t - t0)
                w.write(pose_topic, mc.numpy_to_pose(w.types, [0.4, 0.0, z], [1.0, 0.0, 0.0, 0.0], stamp=t), ns)
            else:
                w.write('instruction', mc.str_to_string(w.types, instruction), ns)
        return dict(w.counts)


@pytest.fixture
def robot_bag() -> Callable[..., dict[str, int]]:
    return write_robot_bag
