"""`maps-vla teleop --device keyboard --task pick_place --out DATASET [--resume]`: record teleoperated demos in
the MuJoCo sim (keyboard in a terminal or over SSH, gamepad, SpaceMouse) into a LeRobot v2.1 dataset."""

from __future__ import annotations

import argparse
import contextlib
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='keyboard', help="'keyboard', 'gamepad' (pygame) or 'spacemouse' (hidapi)")
    parser.add_argument('--task', default='pick_place', help="sim task: 'pick_place' or 'emoji'")
    parser.add_argument('--variant', default='train', help="task variant ('train' or a held-out one)")
    parser.add_argument('--out', required=True, help='dataset folder (LeRobot v2.1 layout)')
    parser.add_argument('--resume', action='store_true', help='append to an existing dataset')
    parser.add_argument('--episodes', type=int, default=None, help='stop after saving this many (default: until quit)')
    parser.add_argument('--instruction', default=None, help="instruction stored with every episode (default: the "
                        "task's own for each scene)")
    parser.add_argument('--seed', type=int, default=None, help='first scene seed (default: random, printed)')
    parser.add_argument('--image-size', type=int, default=224, help='square camera side in pixels')
    parser.add_argument('--control-hz', type=float, default=10.0, help='control rate = dataset fps')
    parser.add_argument('--episode-seconds', type=float, default=60.0, help='time limit of one episode')
    parser.add_argument('--png', action='store_true', help='store frames as PNG instead of mp4')
    parser.add_argument('--keep-failures', action='store_true',
                        help='also save episodes that end without success (object fell, time limit)')
    parser.add_argument('--no-view', action='store_true', help='no live camera window even where a display exists')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE',
                        help='device config fields, e.g. pos_speed=0.02 (see maps_vla/teleop/config_<device>.py)')


def run(args: argparse.Namespace) -> int:
    from maps_vla.config import apply_overrides
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.sim import EnvConfig, make_env
    from maps_vla.teleop import (KeyboardDevice, LiveView, QueueKeySource, SessionConfig, TeleopSession,
                                 TerminalKeySource, make_teleop, make_teleop_config)
    from maps_vla.teleop.keyboard import key_help

    def fail(message: str, code: int = 2) -> int:
        print(f'maps-vla teleop: error: {message}', file=sys.stderr)
        return code

    if args.control_hz != int(args.control_hz) or args.control_hz <= 0:
        return fail(f'--control-hz must be a positive whole number (dataset fps), got {args.control_hz}')
    try:
        device_cfg = make_teleop_config(args.device, apply_overrides({}, args.overrides))
        session_cfg = SessionConfig(num_episodes=args.episodes, instruction=args.instruction, seed=args.seed)
        env_cfg = EnvConfig(task=args.task, variant=args.variant, control_hz=args.control_hz,
                            image_size=(args.image_size, args.image_size), episode_seconds=args.episode_seconds)
    except (ValueError, TypeError) as exc:
        return fail(str(exc))

    window_keys = QueueKeySource()
    view = None if args.no_view else LiveView.open(on_keys=window_keys.push)
    sources = ([TerminalKeySource()] if sys.stdin.isatty() else []) + ([window_keys] if view is not None else [])
    if args.device == 'keyboard' and not sources:
        return fail('keyboard teleop needs a terminal on stdin (over SSH: `ssh -t`) or a live-view window')
    device = make_teleop(args.device, device_cfg, **({'sources': sources} if args.device == 'keyboard' else {}))
    # Devices without enough buttons take discard / re-record / quit from the keyboard.
    event_devices = [KeyboardDevice(sources=sources)] if args.device != 'keyboard' and sources else []

    env = make_env(env_cfg)
    try:
        with contextlib.ExitStack() as stack:
            writer = (DatasetWriter.open(args.out) if args.resume else
                      DatasetWriter.create(args.out, fps=int(args.control_hz), features=env.features,
                                           video=not args.png))
            stack.enter_context(writer)
            for d in (device, *event_devices):
                d.connect()
                stack.callback(d.close)
            print(f'maps-vla teleop: {args.device} -> {args.out} ({writer.num_episodes} episodes there)\n'
                  f'keys{" (episode events only)" if args.device != "keyboard" else ""}:\n{key_help()}', flush=True)
            session = TeleopSession(env, device, writer, session_cfg, event_devices=event_devices, view=view)
            result = session.run()
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError, ImportError) as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        print('\ninterrupted: the episode in progress was dropped; saved episodes are kept', file=sys.stderr)
        return 130
    finally:
        env.close()
        if view is not None:
            view.close()
    print(f'saved {len(result.saved)} episodes ({result.frames} frames, {result.discarded} dropped) to {args.out}')
    return 0
