"""`maps-vla bag2episodes BAG --out DATASET`: turn a recorded teleop bag into LeRobot episodes at the dataset fps."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', help='input ROS 2 bag (directory, or a .db3/.mcap file)')
    parser.add_argument('--out', required=True, help='dataset folder; created, or appended to when it exists')
    parser.add_argument('--config', default=None, help='BagEpisodesConfig YAML (topics, recorder, state)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config field, e.g. --set recorder.fps=15 --set state.kind=joint_positions')


def run(args: argparse.Namespace) -> int:
    from maps_vla.config import load_config
    from maps_vla.control.bag_episodes import BagEpisodesConfig, bag_to_episodes
    from maps_vla.control.bag_io import BagError

    try:
        cfg = load_config(BagEpisodesConfig, args.config, args.overrides)
        report = bag_to_episodes(args.bag, args.out, cfg)
    except (BagError, FileNotFoundError, FileExistsError, ValueError, TypeError, RuntimeError) as exc:
        print(f'maps-vla bag2episodes: error: {exc}', file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.episodes else 1
