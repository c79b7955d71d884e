"""Times one optimizer step of SPDAdam (single, foreach, fused) against torch's AdamW (for-loop, foreach, fused).

The parameters are a stack of pre-norm transformer blocks (QKV, output, 4x MLP weights; norm weights; biases) with
about ``--params`` elements, fake gradients, and anchors a little off the weights so that the projection triggers on
roughly half of the tensors, as in training. Groups follow MAPS: one λ per block, linear in depth, biases at λ = 0.

    PYTHONPATH=src python benchmarks/optimizer_step.py --params 100e6 --device cpu
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch

from maps_vla.maps.optimizer import SPDAdam

# Ideal memory traffic per parameter and step, counted in tensor-sized reads + writes of the op sequence each
# implementation runs on a λ > 0 tensor (the anchor term is added separately with its own dtype).
_ACCESSES = {  # (param-dtype accesses, anchor accesses)
    'AdamW for-loop': (20, 0),   # mul_ wd; lerp_ m; mul_, addcmul_ v; sqrt, div_, add_ denom; addcdiv_ p
    'AdamW foreach': (20, 0),
    'AdamW fused': (7, 0),       # read p, g, m, v; write p, m, v
    'SPDAdam single': (36, 2),   # moments 8, denom 6, d=θ−θ₀ 2, gᵀd 2, ‖d‖ 1, d̃ 4, ‖d̃‖ 1; denom 6, θ̃ 4, lerp 2
    'SPDAdam foreach': (30, 2),  # as single, but the denominators are kept from pass 1
    # Inductor (CPU) emits pass 1 as a reduction loop (read p, g, m, v, θ₀) and a loop that stores the moments (read
    # g, m, v, write m, v); pass 2 reads p, m, v, θ₀ and writes p.
    'SPDAdam fused': (13, 2),
}
_STATE = {'AdamW': 2, 'SPDAdam': 2}  # moments per parameter (SPDAdam adds the anchor)


def bytes_per_param(name: str, elem: int, anchor_elem: int) -> tuple[int, int]:
    """(persistent state, ideal traffic per step) in bytes per parameter of implementation ``name``."""
    family = name.split()[0]
    main_acc, anchor_acc = _ACCESSES[name]
    return (_STATE[family] * elem + (anchor_elem if family == 'SPDAdam' else 0),
            main_acc * elem + anchor_acc * anchor_elem)


def transformer_shapes(n_params: float, hidden: int) -> list[list[tuple[tuple[int, ...], bool]]]:
    """Blocks of ``(shape, is_bias)`` for pre-norm transformer blocks until about ``n_params`` elements."""
    d = hidden
    block = [((d,), False), ((d,), True), ((3 * d, d), False), ((3 * d,), True), ((d, d), False), ((d,), True),
             ((d,), False), ((d,), True), ((4 * d, d), False), ((4 * d,), True), ((d, 4 * d), False), ((d,), True)]
    per_block = sum(math.prod(s) for s, _ in block)
    return [block for _ in range(max(1, round(n_params / per_block)))]


def build(args: argparse.Namespace) -> tuple[list[list[torch.Tensor]], list[list[bool]], list[list[torch.Tensor]]]:
    gen = torch.Generator(device=args.device).manual_seed(0)
    dtype, anchor_dtype = getattr(torch, args.dtype), getattr(torch, args.anchor_dtype or args.dtype)
    params, biases, anchors = [], [], []
    for block in transformer_shapes(args.params, args.hidden):
        params.append([])
        biases.append([])
        anchors.append([])
        for shape, is_bias in block:
            p = torch.nn.Parameter(0.02 * torch.randn(shape, generator=gen, device=args.device, dtype=dtype))
            p.grad = 1e-3 * torch.randn(shape, generator=gen, device=args.device, dtype=dtype)
            params[-1].append(p)
            biases[-1].append(is_bias)
            anchors[-1].append((p.detach() + 1e-3 * torch.randn(shape, generator=gen, device=args.device,
                                                                dtype=dtype)).to(anchor_dtype))
    return params, biases, anchors


def spd_groups(params, biases, anchors, lam_max):
    n = len(params)
    groups = [{'params': [p for p, b in zip(ps, bs) if not b], 'anchors': [a for a, b in zip(ans, bs) if not b],
               'lam': lam_max * (1 - k / n), 'name': f'block.{k}'}
              for k, (ps, bs, ans) in enumerate(zip(params, biases, anchors))]
    groups.append({'params': [p for ps, bs in zip(params, biases) for p, b in zip(ps, bs) if b], 'lam': 0.0,
                   'anchor': 'zero', 'name': 'bias'})
    return groups


def triggered_fraction(groups) -> float:
    decided = [(-(p.grad.double() * (p.detach().double() - a.double())).sum() < 0).item()
               for g in groups if g['lam'] > 0 for p, a in zip(g['params'], g['anchors'])]
    return sum(decided) / len(decided)


def make_optimizer(name, params, biases, anchors, args):
    flat = [p for ps in params for p in ps]
    if name == 'AdamW for-loop':
        return torch.optim.AdamW(flat, lr=1e-4, foreach=False)
    if name == 'AdamW foreach':
        return torch.optim.AdamW(flat, lr=1e-4, foreach=True)
    if name == 'AdamW fused':
        return torch.optim.AdamW(flat, lr=1e-4, fused=True)
    kind = {'SPDAdam single': {'foreach': False}, 'SPDAdam foreach': {'foreach': True},
            'SPDAdam fused': {'fused': True}}[name]
    return SPDAdam(spd_groups(params, biases, anchors, args.lam), lr=1e-4, **kind)


def time_steps(optimizers: dict, args: argparse.Namespace) -> dict[str, tuple[float, list[float]]]:
    """Returns {name: (first step seconds, timed step seconds)}.

    The timed steps run in interleaved rounds (one step of each implementation per round), so that load from other
    processes on a shared machine hits every implementation alike.
    """
    sync = torch.cuda.synchronize if args.device == 'cuda' else (lambda: None)

    def timed(opt) -> float:
        sync()
        start = time.perf_counter()
        opt.step()
        sync()
        return time.perf_counter() - start

    first = {name: timed(opt) for name, opt in optimizers.items()}
    for _ in range(args.warmup - 1):
        for opt in optimizers.values():
            opt.step()
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(args.repeats):
        for name, opt in optimizers.items():
            times[name].append(timed(opt))
    return {name: (first[name], times[name]) for name in optimizers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--params', type=float, default=100e6, help='total parameter count (default 100e6)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--dtype', choices=['float32', 'bfloat16', 'float16', 'float64'], default='float32')
    parser.add_argument('--anchor-dtype', choices=['float32', 'bfloat16', 'float16', 'float64'], default=None,
                        help='SPDAdam anchor dtype (default: --dtype)')
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per implementation')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps first, at least 1 (fused compiles in the first)')
    parser.add_argument('--hidden', type=int, default=1024, help='transformer width')
    parser.add_argument('--lam', type=float, default=1.0, help='λ of the first block (MAPS λ_max)')
    parser.add_argument('--impls', nargs='+', default=list(_ACCESSES), choices=list(_ACCESSES), metavar='IMPL',
                        help=f'subset of: {", ".join(_ACCESSES)}')
    args = parser.parse_args()
    if args.warmup < 1 or args.repeats < 1:
        parser.error(f'--warmup and --repeats must be >= 1, got {args.warmup} and {args.repeats}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda needs a CUDA build of torch and a GPU')

    params, biases, anchors = build(args)
    n = sum(p.numel() for ps in params for p in ps)
    elem = torch.empty((), dtype=getattr(torch, args.dtype)).element_size()
    anchor_elem = torch.empty((), dtype=getattr(torch, args.anchor_dtype or args.dtype)).element_size()
    device = torch.cuda.get_device_name() if args.device == 'cuda' else f'{platform.processor() or "cpu"}'
    print(f'{n / 1e6:.1f}M params in {sum(len(ps) for ps in params)} tensors ({len(params)} blocks, '
          f'hidden {args.hidden}), {args.dtype}, anchors {args.anchor_dtype or args.dtype}, device {args.device} '
          f'({device}, {torch.get_num_threads()} threads, {os.cpu_count()} cores), torch {torch.__version__}')
    print(f'projection triggers on {100 * triggered_fraction(spd_groups(params, biases, anchors, args.lam)):.0f}% '
          f'of the λ > 0 tensors at the first step; warm-up {args.warmup}, {args.repeats} interleaved rounds')

    optimizers = {name: make_optimizer(name, params, biases, anchors, args) for name in args.impls}
    results = time_steps(optimizers, args)
    base = statistics.median(results['AdamW fused'][1]) if 'AdamW fused' in results else None
    header = (f'| {"implementation":<16} | {"median ms":>9} | {"min ms":>8} | {"x AdamW fused":>13} | '
              f'{"first step s":>12} | {"state B/param":>13} | {"traffic B/param":>15} | {"GB/s":>6} |')
    print(header)
    print('|' + '|'.join('-' * (len(c)) for c in header.split('|')[1:-1]) + '|')
    for name, (first, times) in results.items():
        median, fastest = statistics.median(times), min(times)
        state, traffic = bytes_per_param(name, elem, anchor_elem)
        ratio = f'{median / base:.2f}' if base else 'n/a'
        print(f'| {name:<16} | {1e3 * median:>9.1f} | {1e3 * fastest:>8.1f} | {ratio:>13} | {first:>12.2f} | '
              f'{state:>13} | {traffic:>15} | {traffic * n / median / 1e9:>6.1f} |')


if __name__ == '__main__':
    main()
