"""`maps-vla collect --task pick_place --episodes 50 --out data/pick`: scripted-expert demos in the MuJoCo sim."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--task', default='pick_place', help="sim task: 'pick_place' or 'emoji'")
    parser.add_argument('--variant', default='train', help="task variant ('train' or a held-out one)")
    parser.add_argument('--episodes', type=int, default=10, help='successful episodes to save')
    parser.add_argument('--out', required=True, help='dataset folder (LeRobot v2.1 layout)')
    parser.add_argument('--seed', type=int, default=0,
                        help='first episode seed; seeds count up from it (with --resume give a fresh range)')
    parser.add_argument('--image-size', type=int, default=224, help='square camera side in pixels')
    parser.add_argument('--control-hz', type=float, default=10.0, help='action rate (dataset fps)')
    parser.add_argument('--png', action='store_true', help='store frames as PNG (exact) instead of mp4')
    parser.add_argument('--resume', action='store_true', help='append to an existing dataset')
    parser.add_argument('--max-steps', type=int, default=200, help='frames per episode at most')


def run(args: argparse.Namespace) -> int:
    from maps_vla.data.collect import collect_episodes
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.sim import EnvConfig, make_env, make_expert

    if args.episodes < 1:
        print(f'maps-vla collect: error: --episodes must be >= 1, got {args.episodes}', file=sys.stderr)
        return 2
    if args.control_hz != int(args.control_hz):
        print(f'maps-vla collect: error: --control-hz must be whole (dataset fps), got {args.control_hz}',
              file=sys.stderr)
        return 2
    env = make_env(EnvConfig(task=args.task, variant=args.variant, control_hz=args.control_hz,
                             image_size=(args.image_size, args.image_size)))
    try:
        writer = (DatasetWriter.open(args.out) if args.resume else
                  DatasetWriter.create(args.out, fps=int(args.control_hz), features=env.features, video=not args.png))
        with writer:
            seeds = range(args.seed, args.seed + 10 * args.episodes)  # failures use up a seed
            results = collect_episodes(env, make_expert(env), writer, args.episodes, seeds, max_steps=args.max_steps)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f'maps-vla collect: error: {exc}', file=sys.stderr)
        return 1
    finally:
        env.close()
    saved = sum(r.episode_index is not None for r in results)
    print(f'saved {saved} episodes ({sum(r.success for r in results)}/{len(results)} expert successes) to {args.out}')
    return 0 if saved == args.episodes else 1
