"""Latency / throughput of one action chunk and training samples/s of a VLAPolicy preset (random weights).

Inference is timed two ways for 1 and 2 camera views:
  * `infer`: the full BasePolicy path, numpy observation in, numpy (K, A) out (resize, tokenize, un-normalize);
  * `model`: the tensor path only (pre-processed pixels and prompt ids already on the device), optionally under
    `torch.compile` (--compile) and captured in a CUDA graph (--cuda-graphs; L1 head, CUDA only).
Training: forward + backward + optimizer step on random batches (--train-batch; 0 skips it).

Examples:
    PYTHONPATH=src python benchmarks/policy_inference.py --preset tiny --device cpu --dtype float32
    PYTHONPATH=src python benchmarks/policy_inference.py --preset minivla --device cuda --dtype bfloat16 \
        --compile --cuda-graphs --train-batch 8
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import statistics
import time

import numpy as np
import torch

from maps_vla.model import make_policy, make_policy_config
from maps_vla.model.heads.base import RobotInputs
from maps_vla.model.vla.configuration_vla import ActionHeadConfig
from maps_vla.policy import OBS_IMAGE_PREFIX, OBS_STATE, TASK

_CAMERAS = ('third_person', 'wrist')
_TASK = 'pick up the black bowl next to the ramekin and place it on the plate'


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time(fn, iters: int, warmup: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in times)
    return {'mean_ms': statistics.fmean(ms), 'p50_ms': ms[len(ms) // 2], 'p90_ms': ms[int(0.9 * (len(ms) - 1))],
            'p99_ms': ms[int(0.99 * (len(ms) - 1))], 'hz': 1e3 / statistics.fmean(ms)}


def _observation(cfg, rng: np.random.Generator) -> dict:
    obs = {OBS_IMAGE_PREFIX + c: rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for c in cfg.cameras}
    obs[TASK] = _TASK
    if cfg.proprio_dim:
        obs[OBS_STATE] = rng.uniform(-1, 1, cfg.proprio_dim).astype(np.float32)
    return obs


def _model_step(policy, obs: dict, args):
    """A tensor-only predict function with static inputs, and what it needs (for compile / CUDA graphs)."""
    cfg = policy.config
    images = np.stack([obs[OBS_IMAGE_PREFIX + c] for c in cfg.cameras]).transpose(0, 3, 1, 2)[None]
    pixels = policy.processor.preprocess_images(torch.from_numpy(np.ascontiguousarray(images)))
    pixels = pixels.to(policy.device, policy.dtype)
    state = torch.as_tensor(obs[OBS_STATE])[None].to(policy.device) if cfg.proprio_dim else None
    ids, mask = policy.processor.tokenize([policy.processor.build_prompt(obs[TASK])])
    ids, mask = ids.to(policy.device), mask.to(policy.device)

    def step():
        inputs = RobotInputs(policy.encode_observation(pixels, state), ids, mask)
        return policy.action_head.predict_action_chunk(policy, inputs)

    fn = torch.compile(step) if args.compile else step
    if not args.cuda_graphs:
        return fn
    if policy.device.type != 'cuda' or cfg.head.type != 'l1_regression':
        raise SystemExit('--cuda-graphs needs --device cuda and the l1_regression head (one static forward)')
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fn()
    return lambda: (graph.replay(), static_out)[1]


def _optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if ':' in name:  # e.g. maps_vla.maps.optimizer:MAPS
        module, cls = name.split(':')
        return getattr(importlib.import_module(module), cls)(params, lr=lr)
    known = {'adamw': torch.optim.AdamW, 'adam': torch.optim.Adam, 'sgd': torch.optim.SGD}
    if name not in known:
        raise SystemExit(f'Unknown --optimizer {name!r}: use one of {sorted(known)} or module:Class')
    return known[name](params, lr=lr)


def _train(policy, args, device: torch.device, make_optimizer=None, time_optimizer: bool = False) -> dict[str, float]:
    """Times training steps; `make_optimizer(policy)` replaces `--optimizer`, and `time_optimizer` also times the
    optimizer step alone (synchronized before and after it, so the step loses its overlap with the next forward)."""
    cfg, size, b = policy.config, 224 if args.preset != 'tiny' else 32, args.train_batch
    g = torch.Generator().manual_seed(0)
    batch = {'images': torch.randint(0, 256, (b, cfg.num_views, 3, size, size), generator=g, dtype=torch.uint8),
             'task': [_TASK] * b, 'actions': torch.rand(b, cfg.chunk_size, cfg.action_dim, generator=g) * 2 - 1,
             'action_mask': torch.ones(b, cfg.chunk_size, dtype=torch.bool)}
    if cfg.proprio_dim:
        batch['state'] = torch.rand(b, cfg.proprio_dim, generator=g) * 2 - 1
    policy.train()
    if args.grad_ckpt:
        policy.gradient_checkpointing_enable()
    if make_optimizer is not None:
        optimizer = make_optimizer(policy)
    else:
        optimizer = _optimizer(args.optimizer, [p for p in policy.parameters() if p.requires_grad], args.lr)
    optimizer_times = []

    def step():
        loss = policy(batch)['loss']
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not time_optimizer:
            optimizer.step()
            return
        _sync(device)
        start = time.perf_counter()
        optimizer.step()
        _sync(device)
        optimizer_times.append(time.perf_counter() - start)

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = _time(step, args.train_steps, args.warmup, device)
    out = {'samples_per_s': b / statistics.fmean(times), 'step_ms': statistics.fmean(times) * 1e3}
    if time_optimizer:
        out['optimizer_ms'] = statistics.fmean(optimizer_times[-len(times):]) * 1e3
        out['first_optimizer_step_s'] = optimizer_times[0]
    if device.type == 'cuda':
        out['peak_mem_gib'] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', default='tiny', help='tiny | minivla | openvla')
    parser.add_argument('--head', default='l1_regression', help='action head (l1_regression, discrete_bins, string)')
    parser.add_argument('--views', type=int, nargs='+', default=[1, 2], help='camera view counts to time')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default=None, help='float32 | bfloat16 (default: bf16 on CUDA, fp32 on CPU)')
    parser.add_argument('--tokenizer', default='char', help="'char' or a local tokenizer folder")
    parser.add_argument('--compile', action='store_true', help='torch.compile the tensor path')
    parser.add_argument('--cuda-graphs', action='store_true', help='capture the tensor path in a CUDA graph')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: leave as is)')
    parser.add_argument('--train-batch', type=int, default=4, help='0 skips the training measurement')
    parser.add_argument('--train-steps', type=int, default=10)
    parser.add_argument('--train-views', type=int, default=2)
    parser.add_argument('--optimizer', default='adamw', help='adamw | adam | sgd | module:Class')
    parser.add_argument('--lr', type=float, default=1e-5)
    parser.add_argument('--grad-ckpt', action='store_true', help='gradient checkpointing for training')
    parser.add_argument('--json', default=None, help='also write the results here')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == 'cuda' else torch.float32)
    rng = np.random.default_rng(0)
    results = {'preset': args.preset, 'head': args.head, 'device': str(device), 'dtype': str(dtype),
               'compile': args.compile, 'cuda_graphs': args.cuda_graphs, 'inference': {}}
    if device.type == 'cuda':
        results['gpu'] = torch.cuda.get_device_name(device)
    base = make_policy_config(args.preset).replace(head=ActionHeadConfig(type=args.head), tokenizer=args.tokenizer)
    torch.manual_seed(0)
    for views in args.views:
        cfg = base.replace(cameras=_CAMERAS[:views])
        policy = make_policy(cfg, device=device, dtype=dtype).eval()
        obs = _observation(cfg, rng)
        with torch.inference_mode():
            full = _summary(_time(lambda: policy.infer(obs), args.iters, args.warmup, device))
        with torch.no_grad():
            model = _summary(_time(_model_step(policy, obs, args), args.iters, args.warmup, device))
        results['inference'][views] = {'infer': full, 'model': model}
        print(f'infer  views={views}: {full["mean_ms"]:.2f} ms (p50 {full["p50_ms"]:.2f}, p90 {full["p90_ms"]:.2f}) '
              f'= {full["hz"]:.1f} chunks/s; model-only {model["mean_ms"]:.2f} ms = {model["hz"]:.1f} chunks/s')
        del policy
    if args.train_batch:
        policy = make_policy(base.replace(cameras=_CAMERAS[:args.train_views]), device=device, dtype=dtype)
        train = results['train'] = _train(policy, args, device)
        memory = f", peak {train['peak_mem_gib']:.1f} GiB" if 'peak_mem_gib' in train else ''
        print(f'train  views={args.train_views} batch={args.train_batch} {args.optimizer}: '
              f"{train['samples_per_s']:.2f} samples/s ({train['step_ms']:.1f} ms/step){memory}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
