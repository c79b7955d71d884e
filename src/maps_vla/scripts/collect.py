"""`maps-vla collect --task pick_place --episodes 50 --out data/pick`: scripted-expert demos in the MuJoCo sim."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--task', default='pick_place', help="sim task: 'pick_place' or 'emoji'")
    parser.add_argument('--variant', default='train', help="task variant ('train' or a held-out one)")
    parser.add_argument('--episodes', type=int, default=10, help='successful episodes to save')
    parser.add_argument('--out', required=True, help='dataset folder (LeRobot v3.0 layout, or see --format)')
    parser.add_argument('--seed', type=int, default=0,
                        help='first episode seed; seeds count up from it (--resume continues after the last seed '
                             'the dataset recorded)')
    parser.add_argument('--image-size', type=int, default=224, help='square camera side in pixels')
    parser.add_argument('--control-hz', type=float, default=10.0, help='action rate (dataset fps)')
    parser.add_argument('--png', action='store_true',
                        help='store frames as PNG inside the Parquet files (exact, LeRobot image mode) instead of mp4')
    parser.add_argument('--format', default='v3.0', choices=('v3.0', 'v2.1'),
                        help='LeRobot codebase version of a new dataset (v3.0: LeRobot >= 0.4; v2.1: LeRobot <= 0.3)')
    parser.add_argument('--resume', action='store_true', help='append to an existing dataset')
    parser.add_argument('--max-steps', type=int, default=200, help='frames per episode at most')
    parser.add_argument('--action-noise', type=float, default=0.0,
                        help='std of noise on the executed translation (m/step) while the clean expert action is '
                             'recorded (DART): demos that show how to recover from drift')
    parser.add_argument('--all-targets', action='store_true',
                        help='record each scene once per object the instruction can name (emoji cards, the choice '
                             "variant's cubes): the same picture with each instruction, so only the words tell the "
                             'target; each counts towards --episodes')
    parser.add_argument('--regrasp-fraction', type=float, default=0.0,
                        help='share of episodes whose first grasp the expert closes beside the object on purpose, '
                             'then opens and grasps again: demos of recovering from a missed grasp')


def _error(message: str, code: int = 1) -> int:
    print(f'maps-vla collect: error: {message}', file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from maps_vla.data.collect import collect_episodes, last_seed
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.sim import EnvConfig, make_env, make_expert

    if args.episodes < 1:
        return _error(f'--episodes must be >= 1, got {args.episodes}', 2)
    if args.max_steps < 1:
        return _error(f'--max-steps must be >= 1, got {args.max_steps}', 2)
    if not args.action_noise >= 0:
        return _error(f'--action-noise must be >= 0, got {args.action_noise}', 2)
    if not 0.0 <= args.regrasp_fraction <= 1.0:
        return _error(f'--regrasp-fraction must be in [0, 1], got {args.regrasp_fraction}', 2)
    if args.control_hz != int(args.control_hz):
        return _error(f'--control-hz must be whole (dataset fps), got {args.control_hz}', 2)
    out = Path(args.out)
    if not args.resume and out.exists() and any(out.iterdir()):
        return _error(f'{str(out)!r} exists and is not empty; add --resume to append episodes to it (seeds continue '
                      'after its last recorded seed), or choose another --out')
    first_seed = args.seed
    if args.resume:
        try:
            recorded = last_seed(out)
        except ValueError as exc:
            return _error(str(exc))
        if recorded is not None:
            first_seed = recorded + 1
            print(f'resuming {out}: seeds continue at {first_seed} (after the last recorded seed {recorded})')
    # A new dataset is built in a hidden sibling folder and moved to --out with its first episode, so a run that
    # saves nothing (or fails first) leaves nothing behind; a later crash keeps the saved episodes at --out.
    partial = out.with_name(f'.{out.name}.partial')
    env = make_env(EnvConfig(task=args.task, variant=args.variant, control_hz=args.control_hz,
                             image_size=(args.image_size, args.image_size)))
    results: list = []
    writer = None
    try:
        if args.resume:
            writer = DatasetWriter.open(out)
        else:
            shutil.rmtree(partial, ignore_errors=True)  # left by a killed run that saved nothing
            writer = DatasetWriter.create(partial, fps=int(args.control_hz), features=env.features,
                                          video=not args.png, codebase_version=args.format)

        def moved_into_place(index: int) -> None:
            if writer.root != out:
                writer.move(out)

        with writer:
            seeds = range(first_seed, first_seed + 10 * args.episodes)  # failures use up a seed
            results = collect_episodes(env, make_expert(env), writer, args.episodes, seeds, max_steps=args.max_steps,
                                       action_noise=args.action_noise, all_targets=args.all_targets,
                                       regrasp_fraction=args.regrasp_fraction, on_saved=moved_into_place)
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        return _error(str(exc))
    finally:
        env.close()
        if writer is not None and writer.root == partial:
            shutil.rmtree(partial, ignore_errors=True)
    saved = sum(r.episode_index is not None for r in results)
    if saved == 0:
        return _error(f'no episode was saved ({len(results)} expert attempts failed); nothing was written to '
                      f'{str(out)!r}')
    print(f'saved {saved} episodes ({sum(r.success for r in results)}/{len(results)} expert successes) to {out}')
    return 0 if saved == args.episodes else 1
