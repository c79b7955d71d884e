"""`maps-vla demo --toy`: fine-tune the toy VLA with MAPS and with plain fine-tuning, and compare their drift.

Seconds instead of minutes, no simulator: the tiny `ToyVLA` (our module names, random "pretrained" weights) learns a synthetic regression task (action = fixed random function of image patch means and proprio) on CPU.
Both runs start from the same weights and see the same batches. The command prints the MAPS λ table, the
training and held-out losses of both runs and the per-module drift table, and writes `drift.png` and
`drift.md` under `--out`.
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path

__all__ = ['run', 'DEFAULTS']

logger = logging.getLogger(__name__)

# option -> default of the toy comparison (the sim demo has its own defaults for the options it shares)
DEFAULTS = {'steps': 300, 'lambda_max': 2.0, 'lr': 1e-3, 'batch_size': 16, 'out': Path('outputs/demo-toy')}


class _Task:
    """Synthetic regression: action = tanh(features @ W), features = 2×2 patch means per channel and proprio."""

    def __init__(self, cfg, seed: int) -> None:
        import torch

        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed + 1)
        n_features = 3 * 4 + cfg.proprio_dim
        self.weight = torch.randn(n_features, cfg.action_dim, generator=gen) * (3.0 / n_features ** 0.5)

    def batch(self, size: int, gen):
        import torch

        cfg = self.cfg
        pixels = torch.randn(size, 3, cfg.image_size, cfg.image_size, generator=gen)
        ids = torch.randint(0, cfg.vocab_size, (size, 4), generator=gen)
        proprio = torch.randn(size, cfg.proprio_dim, generator=gen)
        pooled = torch.nn.functional.adaptive_avg_pool2d(pixels, 2).flatten(1) * cfg.image_size / 2
        target = torch.tanh(torch.cat([pooled, proprio], dim=1) @ self.weight)
        return (pixels, ids, proprio), target


def _train(model, optimizer, task: _Task, args: argparse.Namespace, label: str) -> list[float]:
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(args.seed + 2)  # same batches for every run
    losses = []
    model.train()
    for _ in tqdm(range(args.steps), desc=label, unit='step', leave=False):
        inputs, target = task.batch(args.batch_size, gen)
        loss = torch.nn.functional.mse_loss(model(*inputs), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _eval(model, task: _Task, seed: int) -> float:
    import torch

    gen = torch.Generator().manual_seed(seed + 3)
    inputs, target = task.batch(128, gen)
    model.eval()
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(*inputs), target))


def run(args: argparse.Namespace) -> int:
    """Run the toy comparison; options left as None take their value from DEFAULTS."""
    import torch

    from maps_vla.maps.drift import drift_report, drift_table, plot_drift
    from maps_vla.maps.factory import FinetuneMethodConfig, make_optimizer
    from maps_vla.maps.param_groups import lambda_table
    from maps_vla.maps.toy import ToyVLA

    args = argparse.Namespace(**{**vars(args), **{k: v for k, v in DEFAULTS.items() if getattr(args, k) is None}})
    args.out = Path(args.out)
    if args.steps < 1 or args.batch_size < 1:
        print(f'maps-vla demo --toy: error: --steps and --batch-size must be >= 1, got {args.steps}, {args.batch_size}')
        return 2
    methods = {
        'MAPS': FinetuneMethodConfig(method='maps', lambda_max=args.lambda_max, schedule=args.schedule, lr=args.lr),
        'FFT': FinetuneMethodConfig(method='fft', lr=args.lr),
    }
    start = time.perf_counter()
    torch.set_num_threads(1)  # the toy's 32-wide matmuls gain nothing from threads; spare the other cores
    torch.manual_seed(args.seed)
    pretrained = ToyVLA()
    task = _Task(pretrained.cfg, args.seed)
    theta0 = {n: p.detach().clone() for n, p in pretrained.named_parameters()}
    print(f'MAPS λ per module (schedule={args.schedule}, lambda_max={args.lambda_max:g}):')
    print(lambda_table(pretrained, args.lambda_max, args.schedule))
    print(f'\nheld-out MSE before fine-tuning: {_eval(pretrained, task, args.seed):.4f}')
    drift = {}
    for label, cfg in methods.items():
        model = copy.deepcopy(pretrained)
        optimizer, _ = make_optimizer(cfg, model)
        losses = _train(model, optimizer, task, args, label)
        tail = losses[-max(1, len(losses) // 10):]
        print(f'{label:>4} ({type(optimizer).__name__}): train MSE first {losses[0]:.4f}, '
              f'last-10% mean {sum(tail) / len(tail):.4f}; held-out MSE {_eval(model, task, args.seed):.4f}')
        drift[label] = drift_report(model, theta0)
    table = drift_table(drift)
    print('\nDrift from the pretrained weights per module:')
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'drift.md').write_text(table + '\n')
    png = plot_drift(drift, args.out / 'drift.png', title=f'Toy VLA drift: MAPS ({args.schedule}, '
                     f'λ_max={args.lambda_max:g}) vs FFT, {args.steps} steps')
    print(f'\nwrote {png} and {args.out / "drift.md"} in {time.perf_counter() - start:.1f} s')
    return 0
