"""`maps-vla overfit --config config/train/sim_pick_place.yaml [key=value ...]`: overfit a handful of demos,
replay them from their own seeds, and fail (exit 3) when fewer than --threshold of them succeed."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']

EXIT_BELOW_THRESHOLD = 3  # the setting could not replay its own demos (errors exit 1, bad arguments 2)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(',') if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f'--seeds must be comma-separated integers, got {text!r}') from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', default=None, help='TrainConfig YAML (see config/train/), as for `maps-vla train`')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE',
                        help='override train config fields, e.g. steps=2000 method.lr=3e-4 (data.root and out_dir '
                             'are set by this verb)')
    parser.add_argument('--task', default='pick_place', help="sim task: 'pick_place' or 'emoji'")
    parser.add_argument('--variant', default='train', help='task variant of the demos and the replay')
    parser.add_argument('--episodes', type=int, default=5, help='scripted demos to collect')
    parser.add_argument('--seed', type=int, default=0, help='first collection seed (a failed attempt uses a seed)')
    parser.add_argument('--image-size', type=int, default=64, help='camera side (px) of the collected demos')
    parser.add_argument('--data', default=None, help='use these recorded demos instead of collecting (needs --seeds)')
    parser.add_argument('--seeds', type=_seeds, default=(), help="with --data: their env seeds, e.g. '0,1,2,3,5'")
    parser.add_argument('--steps', type=int, default=None, help='training steps (default: the config\'s)')
    parser.add_argument('--max-steps', type=int, default=200, help='env steps per episode at most (collect, replay)')
    parser.add_argument('--execute-steps', type=int, default=None, help='actions run per chunk before re-inferring')
    parser.add_argument('--smoothing', default=None, choices=['temporal_ensemble', 'crossfade', 'none'],
                        help='re-infer every step and blend the chunks covering it, as `maps-vla eval --smoothing` '
                             '(default: each chunk runs open-loop)')
    parser.add_argument('--threshold', type=float, default=0.9, help='replay success rate to pass (exit 3 below)')
    parser.add_argument('--videos', type=int, default=1, help='replay videos saved')
    parser.add_argument('--out', default='outputs/overfit', help='folder for data/, train/, replay/, overfit.json')
    parser.add_argument('--device', default='cpu', help="torch device of the replayed policy, e.g. 'cuda'")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from maps_vla.config import load_config
    from maps_vla.eval.overfit import OverfitConfig, run_overfit
    from maps_vla.sim import TASK_VARIANTS
    from maps_vla.train.configuration_train import TrainConfig

    if args.task not in TASK_VARIANTS or args.variant not in TASK_VARIANTS[args.task]:
        known = {t: list(v) for t, v in TASK_VARIANTS.items()}
        print(f'maps-vla overfit: error: unknown task/variant {args.task}/{args.variant}; known: {known}',
              file=sys.stderr)
        return 2
    try:
        cfg = OverfitConfig(task=args.task, variant=args.variant, episodes=args.episodes, seed=args.seed,
                            image_size=args.image_size, data=args.data, seeds=args.seeds, max_steps=args.max_steps,
                            execute_steps=args.execute_steps, smoothing=args.smoothing, threshold=args.threshold,
                            videos=args.videos, out=args.out, device=args.device)
        train_cfg = load_config(TrainConfig, args.config, args.overrides)
        if args.steps is not None:
            train_cfg = dataclasses.replace(train_cfg, steps=args.steps)
    except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
        print(f'maps-vla overfit: error: {exc}', file=sys.stderr)
        return 2
    try:
        result = run_overfit(cfg, train_cfg)
    except (FileExistsError, FileNotFoundError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        print(f'maps-vla overfit: error: {exc}', file=sys.stderr)
        return 1
    print(result.report.to_markdown())
    if result.train.health is not None:
        print(result.train.health.summary())
    print(result.summary())
    print(f'wrote {args.out}')
    return 0 if result.passed else EXIT_BELOW_THRESHOLD
