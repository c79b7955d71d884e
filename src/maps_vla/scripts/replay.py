"""`maps-vla replay BAG --out OUT_BAG --policy sine`: run the robot runtime offline on a ROS 2 bag."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', help='input ROS 2 bag (directory, or a .db3/.mcap file)')
    parser.add_argument('--out', required=True, help='output bag directory to create (must not exist)')
    parser.add_argument('--policy', default='sine',
                        help="a checkpoint folder, or a built-in test policy: 'zero', 'sine' (default)")
    parser.add_argument('--config', default=None, help='ReplayConfig YAML (topics, rates, smoother, safety)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config field, e.g. --set smoother.method=temporal_ensemble (repeatable)')
    parser.add_argument('--storage', choices=('sqlite3', 'mcap'), default=None, help='output bag storage')


def run(args: argparse.Namespace) -> int:
    from maps_vla.config import load_config
    from maps_vla.control.bag_io import BagError
    from maps_vla.control.builtin_policies import make_policy
    from maps_vla.control.pipeline import ReplayConfig, replay_bag

    overrides = list(args.overrides) + ([f'storage={args.storage}'] if args.storage else [])
    try:
        cfg = load_config(ReplayConfig, args.config, overrides)
        policy = make_policy(args.policy, cfg.action)
        report = replay_bag(args.bag, args.out, policy, cfg)
    except (BagError, FileNotFoundError, FileExistsError, ValueError, TypeError, RuntimeError) as exc:
        print(f'maps-vla replay: error: {exc}', file=sys.stderr)
        return 1
    print(report.summary())
    return 0
