"""Control steps per second of the maps_vla.sim Franka env on this machine, with both cameras or without rendering.

Drives pick-and-place episodes with the scripted expert and times `env.step` only (one step = one control period:
differential IK, physics_hz / control_hz MuJoCo steps, and, when rendering, one frame from each camera). Prints
the median and best of several trials, and the real-time factor (control steps/s / control_hz).

    PYTHONPATH=src MUJOCO_GL=egl python benchmarks/sim_speed.py [--steps 300] [--trials 5]

llvmpipe renders with LP_NUM_THREADS worker threads (default: one per core); `LP_NUM_THREADS=0` renders in the
calling thread, which can be faster when other processes load the CPU. The load average is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from maps_vla.sim import EnvConfig, make_env, make_expert


def control_steps_per_second(control_hz: float, render: bool, image_size: tuple[int, int], steps: int) -> float:
    """Steps per second of `env.step` over `steps` expert-driven control steps (episodes restart as needed)."""
    env = make_env(EnvConfig(control_hz=control_hz, render=render, image_size=image_size))
    expert = make_expert(env)
    seed, elapsed, done = 0, 0.0, steps
    obs = env.reset(seed=seed)
    expert.reset()
    env.step(expert.get_action(obs))  # warm-up: creates the GL context
    while done > 0:
        action = expert.get_action(obs)
        start = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        done -= 1
        if terminated or truncated:
            seed += 1
            obs = env.reset(seed=seed)
            expert.reset()
    env.close()
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=300, help='control steps per trial')
    parser.add_argument('--trials', type=int, default=5)
    parser.add_argument('--size', type=int, default=224, help='square image side')
    args = parser.parse_args()
    print(f'cores: {os.cpu_count()}  load average: {" ".join(f"{x:.2f}" for x in os.getloadavg())}  '
          f'MUJOCO_GL={os.environ.get("MUJOCO_GL")}  LP_NUM_THREADS={os.environ.get("LP_NUM_THREADS", "(unset)")}')
    print('| control rate | rendering | control steps/s median (best) | x real time (median) |')
    print('|---|---|---|---|')
    for control_hz in (10.0, 20.0):
        for render in (True, False):
            rates = [control_steps_per_second(control_hz, render, (args.size, args.size), args.steps)
                     for _ in range(args.trials)]
            label = f'2 cameras {args.size}x{args.size}' if render else 'none'
            median = statistics.median(rates)
            print(f'| {control_hz:g} Hz (500 Hz physics) | {label} | {median:.0f} ({max(rates):.0f}) | '
                  f'{median / control_hz:.1f} |', flush=True)
    print(f'load average after: {" ".join(f"{x:.2f}" for x in os.getloadavg())}')


if __name__ == '__main__':
    main()
