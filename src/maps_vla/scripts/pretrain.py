"""`maps-vla pretrain --config config/pretrain/prior_cpu.yaml [key=value ...]`: build the small VLA prior.

Runs (or resumes) every stage into the config's `out` folder and prints the closed-loop table and where the
policy and its model card are. Without --config the dataclass defaults apply: the smallest setting (CI).
"""

from __future__ import annotations

import argparse
import logging
import time

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', default=None, help='YAML file (config/pretrain/*.yaml); default: the smallest '
                        'CI setting')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE', help='config overrides, e.g. steps=20000')


def run(args: argparse.Namespace) -> int:
    """Bad configs and a folder of another run reach the CLI's one-line error handler (exit 2)."""
    from maps_vla.config import load_config
    from maps_vla.pretrain import PretrainConfig, run_pretrain

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    if not getattr(args, 'verbose', False):
        logging.getLogger().setLevel(logging.WARNING)  # stage headers and progress bars are the output
    start = time.perf_counter()
    files = run_pretrain(cfg, announce=lambda text: print(text, flush=True))
    print(f'done in {time.perf_counter() - start:.0f} s; policy: {files["policy"]} (MODEL_CARD.md inside)')
    print((files['policy'] / 'MODEL_CARD.md').read_text().split('## Config')[0])
    return 0
