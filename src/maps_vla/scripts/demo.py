"""`maps-vla demo`: the whole loop in the MuJoCo sim on CPU in a few minutes, nothing downloaded.

Scripted-expert demos of a task variant the start policy never saw -> MAPS and plain AdamW fine-tunes of it (the
pretrained prior shipped in the package by default; `--start FOLDER` a checkpoint, `--start random` random weights) ->
evaluation on the new variant, the start policy's own variant (retention) and a held-out one, beside the start
policy, the expert and random floors -> a report folder (success table and plot, λ table, drift table and plot, a
rollout video, summary.md). `--size smallest` is the CI setting, `small` a longer CPU run with 50 episodes per
cell, `gpu` a larger model for longer on one GPU. `maps-vla demo --toy` instead runs the seconds-long toy comparison
of MAPS and plain fine-tuning (λ table and drift, no simulator).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--toy', action='store_true',
                        help='run the quick toy comparison of MAPS and plain fine-tuning instead (no sim)')
    parser.add_argument('--start', default=None, help="starting policy: 'prior' (shipped, default), 'random' (tiny "
                        "random init, for contrast) or a checkpoint folder")
    parser.add_argument('--size', default='smallest', help="'smallest' (CI, ~5 min on 2 CPU cores), 'small' (longer "
                        "CPU run) or 'gpu' (a larger random-init model and more steps, --device cuda)")
    parser.add_argument('--steps', type=int, default=None, help="fine-tuning steps (default: the size's)")
    parser.add_argument('--episodes', type=int, default=None, help="scripted-expert demos (default: the size's)")
    parser.add_argument('--eval-episodes', type=int, default=None, help='evaluation episodes per variant and policy')
    parser.add_argument('--out', default=None, help='report folder (default outputs/demo; --toy: outputs/demo-toy)')
    parser.add_argument('--device', default=None, help="'cpu' or 'cuda' (default: cpu; cuda for --size gpu)")
    parser.add_argument('--video', action='store_true', help='store the demos as mp4 instead of PNG')
    parser.add_argument('--lambda-max', type=float, default=None, help='MAPS λ_max (default 1.5; --toy 2.0)')
    parser.add_argument('--schedule', default='linear', help='MAPS λ schedule (default linear)')
    parser.add_argument('--lr', type=float, default=None, help='learning rate (default 3e-5; --toy 1e-3)')
    parser.add_argument('--batch-size', type=int, default=None, help="batch size (default: the size's; --toy 16)")
    parser.add_argument('--seed', type=int, default=0, help='seed of demos, weights, batches and baselines')
    parser.add_argument('--workers', type=int, default=None,
                        help="processes that fine-tune and evaluate side by side (default: the size's, 2 on CPU)")


def run(args: argparse.Namespace) -> int:
    if args.toy:
        from maps_vla.scripts import _demo_toy

        return _demo_toy.run(args)
    from maps_vla.demo import demo_config, run_demo

    try:
        cfg = demo_config(args.size, start=args.start, out=args.out, steps=args.steps, episodes=args.episodes,
                          eval_episodes=args.eval_episodes, device=args.device, video=args.video or None,
                          lambda_max=args.lambda_max, schedule=args.schedule, lr=args.lr, batch_size=args.batch_size,
                          seed=args.seed, workers=args.workers)
    except (ValueError, TypeError) as exc:
        print(f'maps-vla demo: error: {exc}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    print(f'maps-vla demo --size {cfg.size}: {cfg.episodes} demos of {cfg.finetune_variant}, {cfg.steps} steps of '
          f'{" and ".join(cfg.methods)} from {cfg.start} on {cfg.device}, {cfg.eval_episodes} eval episodes per '
          f'variant -> {cfg.out}', flush=True)
    root = logging.getLogger()
    level = root.level
    if not getattr(args, 'verbose', False):
        root.setLevel(logging.WARNING)  # the stage headers and progress bars are the output; -v shows the logs
    try:
        result = run_demo(cfg, announce=lambda text: print(text, flush=True))
    except (FileExistsError, FileNotFoundError, RuntimeError) as exc:
        print(f'maps-vla demo: error: {exc}', file=sys.stderr)
        return 1
    finally:
        root.setLevel(level)
    print('\n' + result.summary)
    print(f'report: {result.out}/summary.md ({time.perf_counter() - start:.0f} s in all)')
    return 0
