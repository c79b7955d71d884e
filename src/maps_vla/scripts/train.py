"""`maps-vla train --config config/train/sim_pick_place.yaml [key=value ...]`: fine-tune a VLA with MAPS."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', default=None, help='TrainConfig YAML (see config/train/)')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE',
                        help='override config fields, e.g. method.lambda_max=1.5 data.root=data/pick steps=2000')


def run(args: argparse.Namespace) -> int:
    from maps_vla.config import load_config
    from maps_vla.train.configuration_train import TrainConfig
    from maps_vla.train.trainer import train

    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
        result = train(cfg)
    except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
        print(f'maps-vla train: error: {exc}', file=sys.stderr)
        return 1
    print(f'trained {result.steps} steps (resumed from {result.resumed_from}); policy: {result.policy_dir}')
    return 0
