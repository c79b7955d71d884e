"""Per-message cost of the ROS-side runtime, model inference excluded.

Measures p50/p99 of wall time and of the thread's CPU time (which leaves out time the OS gave to other processes
on a shared machine) of:
  image      sensor_msgs/Image 640x480 bgr8 -> RGB numpy -> centre crop + INTER_AREA resize to 224x224
  jpeg       sensor_msgs/CompressedImage 640x480 jpeg -> the same (for reference; no target)
  smoother   one ChunkSmoother tick at 100 Hz (crossfade, cubic, v/a/j limits; 7-dim chunks of 10 at 10 Hz)
  bridge     one SafetyBridge on_command + tick (ee_delta, measured pose, gripper)
  e2e        the path from a camera message to a robot command, inference excluded: Image in (conversion,
             preprocessing, runner), JointState in, a policy request (synchronous no-op policy), its chunk
             published as a JointTrajectory and handed to the smoother, one smoother tick, one bridge tick,
             PoseStamped out; one iteration per 0.1 s policy period
Messages are rosbags dataclasses (what replay reads); rclpy messages differ only in how `data` is held.

Usage: PYTHONPATH=src python benchmarks/ros_overhead.py [--iters 2000] [--markdown]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable

import cv2
import numpy as np
from rosbags.typesys import Stores, get_typestore

from maps_vla.control import msg_conversion as mc
from maps_vla.control.builtin_policies import ZeroPolicy
from maps_vla.control.camera import preprocess_frame
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.franka_limits import FR3_HOME, joint_limits
from maps_vla.control.policy_runner import PolicyRunner, PolicyRunnerConfig
from maps_vla.control.safety import SafetyBridge, SafetyConfig
from maps_vla.control.smoothing import ChunkSmoother, HoldMode, SmootherConfig

TARGETS_MS = {'image': 2.0, 'smoother': 0.2, 'bridge': 0.2, 'e2e': 5.0}
HZ = 100.0
TYPES = get_typestore(Stores.ROS2_JAZZY)
JOINTS = [*joint_limits('fr3').names, 'fr3_finger_joint1', 'fr3_finger_joint2']


def _time(fn: Callable[[int], None], iters: int, warmup: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Wall and thread-CPU milliseconds per call (CPU time excludes time the OS gave to other processes)."""
    for i in range(warmup):
        fn(i)
    gc.collect()
    wall, cpu = np.empty(iters), np.empty(iters)
    for i in range(iters):
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        fn(warmup + i)
        wall[i], cpu[i] = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    return wall / 1e6, cpu / 1e6


def _camera_msgs(n: int = 8) -> tuple[list, list]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    raw, jpeg = [], []
    for i in range(n):
        rgb = np.dstack([(x + 3 * i) % 256, y % 256, (x + y) % 256]).astype(np.uint8)
        rgb = cv2.add(rgb, rng.integers(0, 20, rgb.shape, dtype=np.uint8))
        raw.append(mc.numpy_to_image(TYPES, rgb[:, :, ::-1].copy(), 'bgr8', stamp=i / 30))
        jpeg.append(mc.numpy_to_compressed(TYPES, rgb, 'jpeg', stamp=i / 30))
    return raw, jpeg


def _chunk(t: float) -> ActionChunk:
    times = t + 0.1 * np.arange(10)
    actions = np.column_stack([0.01 * np.sin(times[:, None] + np.arange(6)), (times % 4 < 2).astype(float)])
    return ActionChunk(t - 0.05, actions, 0.1)


def _smoother() -> ChunkSmoother:
    return ChunkSmoother(SmootherConfig(control_hz=HZ, max_velocity=(0.05,), max_acceleration=(1.0,),
                                        max_jerk=(50.0,), gripper_index=6, hold_mode=HoldMode.ZERO))


def bench_image(raw: list, iters: int) -> tuple[np.ndarray, np.ndarray]:
    return _time(lambda i: preprocess_frame(mc.image_to_rgb(raw[i % len(raw)])), iters)


def bench_jpeg(jpeg: list, iters: int) -> tuple[np.ndarray, np.ndarray]:
    return _time(lambda i: preprocess_frame(mc.compressed_to_numpy(jpeg[i % len(jpeg)])), iters)


def bench_smoother(iters: int) -> tuple[np.ndarray, np.ndarray]:
    smoother = _smoother()

    def step(k: int) -> None:
        t = k / HZ
        if k % 10 == 0:
            smoother.on_chunk(_chunk(t))
        smoother.tick(t)

    return _time(step, iters)


def bench_bridge(iters: int) -> tuple[np.ndarray, np.ndarray]:
    bridge = SafetyBridge(SafetyConfig(control_hz=HZ))
    bridge.on_measured_pose(np.array([0.45, 0.0, 0.4]), np.array([1.0, 0.0, 0.0, 0.0]), 0.0)
    rng = np.random.default_rng(0)
    commands = np.column_stack([rng.normal(0, 0.005, (64, 6)), rng.random(64) > 0.5])

    def step(k: int) -> None:
        t = k / HZ
        bridge.on_command(commands[k % 64], t)
        bridge.tick(t)

    return _time(step, iters)


def bench_e2e(raw: list, iters: int) -> tuple[np.ndarray, np.ndarray]:
    runner = PolicyRunner(ZeroPolicy(), PolicyRunnerConfig(synchronous=True))
    runner.set_instruction('pick up the cube')
    smoother = _smoother()
    bridge = SafetyBridge(SafetyConfig(control_hz=HZ))
    bridge.on_measured_pose(np.array([0.45, 0.0, 0.4]), np.array([1.0, 0.0, 0.0, 0.0]), 0.0)
    joint_msg = mc.numpy_to_joint_state(TYPES, JOINTS, [*FR3_HOME, 0.04, 0.04], np.zeros(9))
    state_names = joint_limits('fr3').names

    def step(k: int) -> None:
        t = k * 0.1
        frame = preprocess_frame(mc.image_to_rgb(raw[k % len(raw)]))
        runner.on_image('third_person', frame, t)
        runner.on_state(mc.joint_state_to_numpy(joint_msg, state_names).position, t)
        runner.request(t)
        for chunk in runner.pop_chunks():
            mc.chunk_to_trajectory(TYPES, chunk)
            smoother.on_chunk(chunk)
        out = smoother.tick(t)
        bridge.on_command(out.command, t)
        target = bridge.tick(t).pose
        mc.numpy_to_pose(TYPES, target.position, target.quaternion, t, target.frame_id)

    return _time(step, iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=2000, help='timed iterations per case')
    parser.add_argument('--markdown', action='store_true', help='print a markdown table')
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one control process should not assume the whole machine
    raw, jpeg = _camera_msgs()
    image_iters = max(50, args.iters // 4)
    results = {
        'image': bench_image(raw, image_iters),
        'jpeg': bench_jpeg(jpeg, image_iters),
        'smoother': bench_smoother(args.iters),
        'bridge': bench_bridge(args.iters),
        'e2e': bench_e2e(raw, image_iters),
    }
    print(f'load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; cv2 threads 1; {args.iters} iterations '
          f'({image_iters} for image cases)')
    if args.markdown:
        print('| case | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms | target p99 ms |')
        print('|---|---|---|---|---|---|')
    for name, (wall, cpu) in results.items():
        w50, w99 = np.percentile(wall, [50, 99])
        c50, c99 = np.percentile(cpu, [50, 99])
        target = TARGETS_MS.get(name)
        if args.markdown:
            print(f'| {name} | {w50:.3f} | {w99:.3f} | {c50:.3f} | {c99:.3f} | {target if target else "-"} |')
        else:
            ratio = f'  p99/target wall {w99 / target:.2f} CPU {c99 / target:.2f}' if target else ''
            print(f'{name:9s} wall p50 {w50:7.3f} p99 {w99:7.3f} ms | CPU p50 {c50:7.3f} p99 {c99:7.3f} ms{ratio}')


if __name__ == '__main__':
    main()
