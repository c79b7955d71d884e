"""control.servo: twists toward the bounded target within the SafetyBridge's speeds, TwistStamped and the
ServoCommandType request against the message definitions, and the Humble/Jazzy API table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from maps_vla.control import msg_conversion as mc
from maps_vla.control.proprio import TOOL_DOWN_QUAT
from maps_vla.control.rotations import quat_from_rotvec, quat_multiply
from maps_vla.control.safety import SafetyConfig
from maps_vla.control.servo import (COMMAND_TYPE_TWIST, SERVO_API, ServoConfig, Twist, command_type_request,
                                    servo_status_name, twist_stamped, twist_toward)

SAFETY = SafetyConfig()
MAX_LINEAR = SAFETY.max_translation_step * SAFETY.control_hz
MAX_ANGULAR = SAFETY.max_rotation_step * SAFETY.control_hz


def _mocks():
    name = 'maps_vla_test_moveit_msgs'
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / 'mocks' / 'moveit_msgs.py'
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_small_errors_give_proportional_twists():
    target_q = quat_multiply(quat_from_rotvec(np.array([0.0, 0.0, 0.01])), TOOL_DOWN_QUAT)
    twist = twist_toward([0.401, 0.0, 0.4], target_q, [0.4, 0.0, 0.4], TOOL_DOWN_QUAT, 10.0, MAX_LINEAR, MAX_ANGULAR)
    np.testing.assert_allclose(twist.linear, [0.01, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(twist.angular, [0.0, 0.0, 0.1], atol=1e-9)  # base-frame yaw


def test_large_errors_are_clipped_to_the_safety_speeds():
    target_q = quat_multiply(quat_from_rotvec(np.array([0.5, 0.0, 0.0])), TOOL_DOWN_QUAT)
    twist = twist_toward([1.0, 1.0, 0.4], target_q, [0.4, 0.0, 0.4], TOOL_DOWN_QUAT, 10.0, MAX_LINEAR, MAX_ANGULAR)
    assert np.linalg.norm(twist.linear) == pytest.approx(MAX_LINEAR)
    assert np.linalg.norm(twist.angular) == pytest.approx(MAX_ANGULAR)
    np.testing.assert_allclose(twist.linear / np.linalg.norm(twist.linear), [0.6, 1.0, 0.0] / np.linalg.norm(
        [0.6, 1.0, 0.0]))


def test_a_held_target_gives_no_motion_and_nan_is_refused():
    twist = twist_toward([0.4, 0, 0.4], TOOL_DOWN_QUAT, [0.4, 0, 0.4], -TOOL_DOWN_QUAT, 10.0, 1.0, 1.0)
    np.testing.assert_allclose(np.concatenate(twist), 0.0, atol=1e-12)  # q and -q are one orientation
    with pytest.raises(ValueError, match='finite'):
        twist_toward([np.nan, 0, 0.4], TOOL_DOWN_QUAT, [0.4, 0, 0.4], TOOL_DOWN_QUAT, 10.0, 1.0, 1.0)


def test_twist_stamped_round_trips_as_cdr():
    store = get_typestore(Stores.ROS2_JAZZY)
    msg = twist_stamped(store, Twist(np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.0, -0.5])), 5.5, 'fr3_link0')
    back = store.deserialize_cdr(store.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    assert back.header.frame_id == 'fr3_link0' and mc.stamp_of(back) == 5.5
    assert (back.twist.linear.x, back.twist.linear.y, back.twist.linear.z, back.twist.angular.z) == (
        0.1, 0.2, 0.3, -0.5)


def test_command_type_request_and_status_codes_match_jazzy_definitions():
    store = _mocks().typestore('jazzy')
    request = command_type_request(store)
    name = 'moveit_msgs/srv/ServoCommandType_Request'
    assert store.deserialize_cdr(store.serialize_cdr(request, name), name).command_type == COMMAND_TYPE_TWIST
    consts = {n: v for n, _, v in store.fielddefs[name][0]}
    assert consts['TWIST'] == COMMAND_TYPE_TWIST
    status = {v: n for n, _, v in store.fielddefs['moveit_msgs/msg/ServoStatus'][0]}
    assert status == SERVO_API['jazzy'].status_codes
    assert 'moveit_msgs/srv/ServoCommandType_Request' not in _mocks().typestore('humble').types


def test_humble_and_jazzy_differ_where_moveit_servo_does():
    humble, jazzy = SERVO_API['humble'], SERVO_API['jazzy']
    assert humble.start == 'start_servo' and jazzy.start is None
    assert (humble.pause_type, jazzy.pause_type) == ('std_srvs/srv/Trigger', 'std_srvs/srv/SetBool')
    assert humble.switch_command_type is None and jazzy.switch_command_type == 'switch_command_type'
    assert (humble.status_type, jazzy.status_type) == ('std_msgs/msg/Int8', 'moveit_msgs/msg/ServoStatus')
    assert servo_status_name('humble', 3) == 'DECELERATE_FOR_COLLISION'
    assert servo_status_name('jazzy', 3) == 'DECELERATE_FOR_LEAVING_SINGULARITY'
    assert ServoConfig(distro='humble').service(humble.start) == '/servo_node/start_servo'


@pytest.mark.parametrize('kwargs, match', [(dict(distro='iron'), 'distro'), (dict(gain=0.0), 'gain'),
                                           (dict(node='servo_node'), 'absolute')])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ServoConfig(**kwargs)
