"""`maps-vla experiment grinningface --config config/experiment/grinningface_cpu.yaml [key=value ...]`.

Runs (or resumes) an experiment into its `out` folder and prints where the report is. Without --config the
dataclass defaults apply: the smallest setting, which only proves that the chain runs (CI).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

__all__ = ['add_arguments', 'run']

_EXPERIMENTS = {'grinningface': 'FFT vs freeze vs uniform SPD vs MAPS on held-out emojis (arXiv 2511.19878 claim)'}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('name', choices=sorted(_EXPERIMENTS), help='; '.join(f'{k}: {v}' for k, v in _EXPERIMENTS.items()))
    parser.add_argument('--config', default=None, help='YAML file (config/experiment/*.yaml); default: the smallest '
                        'CI setting')
    parser.add_argument('overrides', nargs='*', metavar='KEY=VALUE', help='config overrides, e.g. finetune_steps=100')


def run(args: argparse.Namespace) -> int:
    from maps_vla.config import load_config
    from maps_vla.experiments.grinningface import GrinningFaceConfig, run_experiment

    try:
        cfg = load_config(GrinningFaceConfig, args.config, args.overrides)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f'maps-vla experiment: error: {exc}', file=sys.stderr)
        return 2
    root = logging.getLogger()
    if not getattr(args, 'verbose', False):
        root.setLevel(logging.WARNING)  # stage headers and progress bars are the output; -v shows the logs
    start = time.perf_counter()
    try:
        files = run_experiment(cfg, announce=lambda text: print(text, flush=True))
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f'maps-vla experiment: error: {exc}', file=sys.stderr)
        return 1
    print(f'done in {time.perf_counter() - start:.0f} s; report: {files["results.md"]}')
    print(files['results.md'].read_text())
    return 0
