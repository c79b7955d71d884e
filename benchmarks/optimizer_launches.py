"""Host work of one SPDAdam step at the MiniVLA preset's tensor structure, narrowed to fit a CPU.

Keeps every layer count of the `minivla` preset (so the number of tensors, ~1100, and their kinds stay) and narrows
the widths and the vocabulary. Per implementation: ops that the step dispatches on the host (top-level aten ops
outside compiled graphs), calls into compiled graphs, the fused path's calls per kernel, and the step time (which,
on a CPU, is mostly the arithmetic, not the host work). gpu_suite.py takes the same counts on a GPU at full width,
with the kernel launches.

    PYTHONPATH=src python benchmarks/optimizer_launches.py --width 384
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch

import gpu_suite
from maps_vla.maps.optimizer import SPDAdam
from maps_vla.model import make_policy, make_policy_config
from maps_vla.model.vla.configuration_vla import resized


def narrowed_params(width: int, vocab: int) -> dict[str, torch.nn.Parameter]:
    cfg = make_policy_config('minivla')
    cfg = resized(cfg, vit_width=width, vit_layers=cfg.vision.dino.num_layers, vit_heads=width // 64,
                  llm_width=width, llm_layers=cfg.llm.num_layers, llm_heads=width // 64, llm_kv_heads=2)
    cfg = cfg.replace(llm=dataclasses.replace(cfg.llm, vocab_size=vocab))
    gen = torch.Generator().manual_seed(0)
    params = {}
    for name, t in make_policy(cfg, device='meta').named_parameters():
        if t.requires_grad:
            p = torch.nn.Parameter(0.02 * torch.randn(t.shape, generator=gen))
            p.grad = 1e-3 * torch.randn(t.shape, generator=gen)
            params[name] = p
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--width', type=int, default=384, help='ViT and LLM width (a multiple of 64; default 384)')
    parser.add_argument('--vocab', type=int, default=4096, help='LLM vocabulary (default 4096)')
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    params = narrowed_params(args.width, args.vocab)
    groups = gpu_suite.maps_groups(params)
    print(f'{sum(p.numel() for p in params.values()) / 1e6:.1f} M params in {len(params)} tensors, '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    impls = {
        'SPDAdam foreach': SPDAdam(groups, lr=1e-4, foreach=True),
        'SPDAdam fused': SPDAdam(groups, lr=1e-4, fused=True),
        'SPDAdam fused no lists': gpu_suite._Patched(SPDAdam(groups, lr=1e-4, fused=True), _LIST_SIZE=0),
        'SPDAdam fused per-tensor': gpu_suite._Patched(SPDAdam(groups, lr=1e-4, fused=True), _GROUP_NUMEL=0,
                                                       _LIST_SIZE=0),
    }
    print('| implementation | host aten ops/step | compiled calls/step | median step ms | first step s |')
    print('|---|---|---|---|---|')
    for name, opt in impls.items():
        start = time.perf_counter()
        opt.step()
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - start)
        counts = gpu_suite._profile_step(opt.step, 'cpu')
        print(f"| {name} | {counts['aten_ops_top_level']} | {counts['compiled_calls']} | "
              f'{1e3 * statistics.median(times):.0f} | {first:.1f} |', flush=True)
        if name.startswith('SPDAdam fused'):
            print(f'  calls per kernel: {json.dumps(gpu_suite._count_compiled_calls(opt.step))}', flush=True)


if __name__ == '__main__':
    main()
