"""Every GPU figure the project owes, in one call that fits a short device lease (≤ 9 min on one H100/H200).

Sections, each in its own subprocess with its own time budget, so that a crash, a hang or an out-of-memory in one
keeps the figures of the others (the JSON and the markdown are rewritten after every section, and every section
records its partial results as it goes):

  optimizer    SPDAdam (foreach, fused with small tensors grouped, fused per tensor) against torch's AdamW
               (foreach, fused) on fp32 copies of the MiniVLA preset's 1154 trainable tensors (1.2 B elements):
               median step, ratio to fused AdamW, bytes moved and bandwidth, compiled-kernel calls and kernel
               launches per step (torch.profiler), and the fused path's grouping plan (padded groups of small
               tensors, equal-size lists of large ones).
  correctness  every SPDAdam kernel on the device against the float64 CPU reference of test/maps/test_optimizer.py
               (its scenario: every branch of the projection) over a few hundred steps, fp32 and bf16 parameters.
  inference    one 8-action chunk of a random-weight MiniVLA in bf16 from 1 and 2 views: eager, CUDA graph,
               torch.compile, compile + CUDA graph; p50/p99 ms and actions/s (target ≤ 10 ms from 2 views).
  training     MiniVLA training steps (2 views, bf16): samples/s with MAPS (foreach and fused SPDAdam) against
               fused AdamW, and the optimizer's share of a step (target ≤ 3 %).
  demo         `maps-vla demo --size gpu --device cuda` through its CLI, timed, with its success table and summary.

    PYTHONPATH=src python3 benchmarks/gpu_suite.py --out "$OUT"                   # one GPU
    PYTHONPATH=src python benchmarks/gpu_suite.py --dry-run --out /tmp/gpu_suite  # CPU, toy sizes, < 1 min

`--dry-run` runs the same code on the CPU at toy sizes (tiny preset, few steps); what needs CUDA (CUDA graphs)
and what would take minutes on a CPU (torch.compile of the policy) is recorded as skipped with the reason.
Writes gpu_suite.json and gpu_suite.md to --out (default: $OUT); scratch files (the demo's report folder, each
section's log) go to --work (default: a new temporary folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / 'src', Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

SECTIONS = ('optimizer', 'correctness', 'inference', 'training', 'demo')
JSON_NAME, MD_NAME = 'gpu_suite.json', 'gpu_suite.md'


@dataclasses.dataclass(frozen=True)
class Mode:
    """Sizes and time budgets of one run: FULL on a GPU, DRY on a CPU."""

    device: str
    preset: str  # policy preset whose parameter shapes the optimizer section uses, and the policy of 3 and 4
    budgets: dict[str, float]  # seconds per section (the demo gets what is left of total_budget)
    total_budget: float
    opt_warmup: int
    opt_repeats: int
    corr_steps: int
    corr_extra_shapes: tuple[tuple[int, ...], ...]  # added to the test scenario's shapes (multi-block reductions)
    corr_cases: tuple[tuple[str, str], ...]  # (SPDAdam path, parameter dtype)
    infer_iters: int
    infer_warmup: int
    infer_variants: tuple[str, ...]
    train_batch: int
    train_steps: int
    train_warmup: int
    demo_args: tuple[str, ...]
    skip_reasons: dict[str, str] = dataclasses.field(default_factory=dict)  # variant -> why it is not run


_PATHS = ('single', 'foreach', 'fused', 'fused per-tensor', 'fused lists')
_CASES = tuple((path, dtype) for dtype in ('float32', 'bfloat16') for path in _PATHS)
_VARIANTS = ('infer', 'eager', 'cuda graph', 'compile', 'compile + cuda graph')

FULL = Mode(
    device='cuda', preset='minivla',
    # Budgets from the first H200 run (docs/results/gpu_h200): optimizer 84 s, correctness 103 s (fp32 fused kernels
    # compile for ~25 s), inference 184 s (two torch.compile builds), training 73 s.
    budgets={'optimizer': 110, 'correctness': 130, 'inference': 200, 'training': 90}, total_budget=540,
    opt_warmup=2, opt_repeats=10, corr_steps=300, corr_extra_shapes=((129, 521), (70_000,)), corr_cases=_CASES,
    infer_iters=50, infer_warmup=5, infer_variants=_VARIANTS, train_batch=8, train_steps=10, train_warmup=3,
    demo_args=('--size', 'gpu', '--device', 'cuda'))
DRY = Mode(
    device='cpu', preset='tiny',
    budgets={'optimizer': 90, 'correctness': 60, 'inference': 60, 'training': 60}, total_budget=300,
    opt_warmup=1, opt_repeats=2, corr_steps=20, corr_extra_shapes=((33, 17),), corr_cases=_CASES,
    infer_iters=3, infer_warmup=1, infer_variants=_VARIANTS, train_batch=2, train_steps=2, train_warmup=1,
    demo_args=('--size', 'smallest', '--device', 'cpu', '--steps', '2', '--episodes', '1', '--eval-episodes', '1'),
    skip_reasons={'cuda graph': 'CUDA only', 'compile + cuda graph': 'CUDA only',
                  'compile': 'dry-run: torch.compile of the policy takes minutes on a CPU',
                  'fused bfloat16': 'dry-run: the bf16 kernels compile for ~20 s on a CPU '
                                    '(test/maps/test_optimizer.py runs them)',
                  'fused per-tensor bfloat16': 'dry-run: as fused bfloat16',
                  'fused lists float32': 'dry-run: the list kernels compile for ~20 s on a CPU '
                                         '(test/maps/test_optimizer.py runs them)',
                  'fused lists bfloat16': 'dry-run: as fused lists float32'})


# ------------------------------------------------------------------------------------------------ recording


class Recorder:
    """A section's results, rewritten to its JSON file after every change (so a killed section keeps them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {'results': {}, 'skipped': {}}

    def set(self, key: str, value: Any) -> None:
        self.data['results'][key] = value
        self._write()

    def skip(self, key: str, reason: str) -> None:
        self.data['skipped'][key] = reason
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix('.tmp')
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)


def _sync(device: str) -> None:
    import torch

    if device == 'cuda':
        torch.cuda.synchronize()


def _seconds_left(deadline: float) -> float:
    return deadline - time.time()


# ------------------------------------------------------------------------------------------------ 1. optimizer


def minivla_params(preset: str, device: str, seed: int = 0) -> dict[str, Any]:
    """fp32 copies of the preset policy's trainable parameters (names and shapes; built on 'meta'), with fake grads."""
    import torch

    from maps_vla.model import make_policy, make_policy_config

    meta = make_policy(make_policy_config(preset), device='meta')
    gen = torch.Generator(device=device).manual_seed(seed)
    params = {}
    for name, tensor in meta.named_parameters():
        if not tensor.requires_grad:  # the last ViT blocks, whose output the policy does not use
            continue
        p = torch.nn.Parameter(0.02 * torch.randn(tensor.shape, generator=gen, device=device))
        p.grad = 1e-3 * torch.randn(tensor.shape, generator=gen, device=device)
        params[name] = p
    return params


def maps_groups(params: dict[str, Any], seed: int = 1) -> list[dict[str, Any]]:
    """MAPS param groups (linear λ, λ_max = 1) with explicit anchors a little off the weights for λ > 0.

    As in optimizer_step.py, the offsets make the projection trigger on about half of the λ > 0 tensors, and the
    anchors are shared by every SPDAdam built from these groups.
    """
    import torch

    from maps_vla.maps.param_groups import maps_param_groups

    groups = maps_param_groups(list(params.items()), 1.0, 'linear')
    gen = None
    for group in groups:
        if group['lam'] == 0:
            group['anchor'] = 'zero'
            continue
        anchors = []
        for p in group['params']:
            if p.device.type == 'meta':
                anchors.append(p.detach())
                continue
            gen = gen or torch.Generator(device=p.device).manual_seed(seed)
            anchors.append(p.detach() + 1e-3 * torch.randn(p.shape, generator=gen, device=p.device))
        group['anchors'] = anchors
    return groups


def grouping_plan(preset: str) -> dict[str, Any]:
    """How the fused path splits the preset's tensors (built on 'meta': no memory), and its compiled calls per step."""
    from maps_vla.maps import optimizer as spd
    from maps_vla.model import make_policy, make_policy_config

    groups = maps_groups(dict(make_policy(make_policy_config(preset), device='meta').named_parameters()))
    params = [p for g in groups for p in g['params']]
    lams = [g['lam'] for g in groups for _ in g['params']]
    anchors = [a for g in groups for a in g.get('anchors', [None] * len(g['params']))]
    plan, singles = spd._tensor_groups(params, params, params, params, anchors, lams)
    lists, singles = spd._equal_size_lists(singles, params, params, params, params, anchors, lams)
    projected = sum(1 for lam in lams if lam)

    def calls(units: list[list[int]]) -> int:  # one call per unit and pass, two for those that project
        return sum(2 if lams[u[0]] else 1 for u in units)

    return {
        'tensors': len(params), 'elements': sum(p.numel() for p in params), 'projected_tensors': projected,
        'distinct_shapes': len({tuple(p.shape) for p in params}), 'group_numel': spd._GROUP_NUMEL,
        'groups': len(plan), 'grouped_tensors': sum(len(g.indices) for g in plan), 'list_size': spd._LIST_SIZE,
        'lists': len(lists), 'listed_tensors': sum(len(x) for x in lists), 'single_tensors': len(singles),
        'compiled_calls_per_step_per_tensor': len(params) + projected,
        'compiled_calls_per_step_grouped': calls([g.indices for g in plan]) + calls(lists)
                                           + calls([[i] for i in singles]),
    }


class _Patched:
    """An optimizer whose steps run with module attributes of maps_vla.maps.optimizer set (e.g. _GROUP_NUMEL)."""

    def __init__(self, optimizer: Any, **attributes: Any) -> None:
        self.optimizer, self.attributes = optimizer, attributes

    def step(self) -> None:
        from maps_vla.maps import optimizer as spd

        saved = {k: getattr(spd, k) for k in self.attributes}
        try:
            for k, v in self.attributes.items():
                setattr(spd, k, v)
            self.optimizer.step()
        finally:
            for k, v in saved.items():
                setattr(spd, k, v)


def _count_compiled_calls(step: Callable[[], None]) -> dict[str, int]:
    """Calls of each fused-path kernel (compiled, and eager for 1-element tensors) during one ``step()``."""
    from maps_vla.maps import optimizer as spd

    counts: dict[str, int] = {}

    def counting(kernels: Any, prefix: str) -> Any:
        def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any) -> Any:
                counts[prefix + name] = counts.get(prefix + name, 0) + 1
                return fn(*args)
            return call
        return spd._Kernels(**{f.name: wrap(f.name, getattr(kernels, f.name))
                               for f in dataclasses.fields(spd._Kernels)})

    compiled, eager = spd._compiled_kernels, spd._EAGER_KERNELS
    counted = counting(compiled(), 'compiled ')
    spd._compiled_kernels, spd._EAGER_KERNELS = (lambda: counted), counting(eager, 'eager ')
    try:
        step()
    finally:
        spd._compiled_kernels, spd._EAGER_KERNELS = compiled, eager
    return counts


def _profile_step(step: Callable[[], None], device: str) -> dict[str, int]:
    """Kernel launches in one ``step()`` (CUDA), or top-level aten ops and compiled regions (CPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    with profile(activities=activities) as prof:
        step()
        _sync(device)
    events = prof.events()

    def inside_compiled(event: Any) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name.startswith('Torch-Compiled Region'):
                return True
            parent = parent.cpu_parent
        return False

    # aten ops the optimizer dispatches itself (not nested in another aten op or run by a compiled graph), and
    # calls into compiled graphs (one dynamo cache lookup each)
    out = {'aten_ops_top_level': sum(1 for e in events if e.name.startswith('aten::')
                                     and (e.cpu_parent is None or not e.cpu_parent.name.startswith('aten::'))
                                     and not inside_compiled(e)),
           'compiled_calls': sum(1 for e in events if e.name == 'TorchDynamo Cache Lookup')}
    if device == 'cuda':
        out['kernel_launches'] = sum(1 for e in events if e.name in ('cudaLaunchKernel', 'cuLaunchKernel',
                                                                     'cudaLaunchKernelExC', 'cuLaunchKernelEx'))
        out['device_kernels'] = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return out


def section_optimizer(mode: Mode, rec: Recorder, deadline: float) -> None:
    import torch

    import optimizer_step
    from maps_vla.maps.optimizer import SPDAdam

    rec.set('plan_minivla', grouping_plan('minivla'))
    if mode.preset != 'minivla':
        rec.set('plan_' + mode.preset, grouping_plan(mode.preset))
    params = minivla_params(mode.preset, mode.device)
    flat = list(params.values())
    groups = maps_groups(params)
    n = sum(p.numel() for p in flat)
    rec.set('setup', {'preset': mode.preset, 'params': n, 'tensors': len(flat), 'dtype': 'float32',
                      'distinct_shapes': len({tuple(p.shape) for p in flat}),
                      'projected_fraction_first_step': optimizer_step.triggered_fraction(groups)})
    impls: dict[str, tuple[str, Callable[[], Any]]] = {  # name -> (optimizer_step._ACCESSES key, factory)
        'AdamW foreach': ('AdamW foreach', lambda: torch.optim.AdamW(flat, lr=1e-4, foreach=True)),
        'AdamW fused': ('AdamW fused', lambda: torch.optim.AdamW(flat, lr=1e-4, fused=True)),
        'SPDAdam foreach': ('SPDAdam foreach', lambda: SPDAdam(groups, lr=1e-4, foreach=True)),
        'SPDAdam fused': ('SPDAdam fused', lambda: SPDAdam(groups, lr=1e-4, fused=True)),
        'SPDAdam fused per-tensor': ('SPDAdam fused', lambda: _Patched(SPDAdam(groups, lr=1e-4, fused=True),
                                                                       _GROUP_NUMEL=0, _LIST_SIZE=0)),
    }
    extra = {  # variants of the fused path's grouping, which each need one more optimizer state
        'SPDAdam fused no lists': lambda: _Patched(SPDAdam(groups, lr=1e-4, fused=True), _LIST_SIZE=0),
        'SPDAdam fused group<=2^20': lambda: _Patched(SPDAdam(groups, lr=1e-4, fused=True), _GROUP_NUMEL=1 << 20,
                                                      _GROUP_BUFFER_NUMEL=1 << 26),
    }
    for name, factory in extra.items():
        if mode.device == 'cpu' or torch.cuda.get_device_properties(0).total_memory > 100 * 2 ** 30:
            impls[name] = ('SPDAdam fused', factory)
        else:
            rec.skip(name, 'needs a GPU with > 100 GiB (one more optimizer state)')
    optimizers = {name: factory() for name, (_, factory) in impls.items()}
    args = SimpleNamespace(device=mode.device, warmup=mode.opt_warmup, repeats=mode.opt_repeats)
    results = optimizer_step.time_steps(optimizers, args)
    base = statistics.median(results['AdamW fused'][1])
    rows = {}
    for name, (first, times) in results.items():
        median = statistics.median(times)
        state, traffic = optimizer_step.bytes_per_param(impls[name][0], 4, 4)
        rows[name] = {'median_ms': 1e3 * median, 'min_ms': 1e3 * min(times), 'x_adamw_fused': median / base,
                      'first_step_s': first, 'state_bytes_per_param': state, 'traffic_bytes_per_param': traffic,
                      'bytes_moved_gb': traffic * n / 1e9, 'bandwidth_gb_s': traffic * n / median / 1e9}
    rec.set('steps', rows)
    launches = {}
    for name, opt in optimizers.items():
        if _seconds_left(deadline) < 10:
            rec.skip('launches ' + name, 'section budget spent')
            continue
        entry = _profile_step(opt.step, mode.device)
        if name.startswith('SPDAdam fused'):
            calls = _count_compiled_calls(opt.step)
            entry['fused_kernel_calls'] = calls
            entry['fused_kernel_calls_per_tensor'] = sum(calls.values()) / len(flat)
        launches[name] = entry
        rec.set('launches', launches)


# ------------------------------------------------------------------------------------------------ 2. correctness


def _test_optimizer_module() -> Any:
    """test/maps/test_optimizer.py, loaded by path: its float64 reference and scenario are the CPU tests' own."""
    path = ROOT / 'test' / 'maps' / 'test_optimizer.py'
    spec = importlib.util.spec_from_file_location('maps_vla_test_optimizer', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_scenario(t: Any, grads: list, dtype: Any, device: str, path: str) -> list[list[Any]]:
    """The test scenario's groups on ``device`` in ``dtype``, stepped through ``grads`` with one SPDAdam path."""
    import torch

    from maps_vla.maps.optimizer import SPDAdam

    groups, _ = t._scenario(grads, dtype)
    for group in groups:
        group['params'] = [torch.nn.Parameter(p.detach().to(device)) for p in group['params']]
        if 'anchors' in group:
            group['anchors'] = [a.to(device) for a in group['anchors']]
    opt = SPDAdam(groups, lr=t.LR, **({'foreach': path == 'foreach'} if path in ('single', 'foreach')
                                      else {'fused': True}))
    if path == 'fused per-tensor':
        opt = _Patched(opt, _GROUP_NUMEL=0, _LIST_SIZE=0)
    elif path == 'fused lists':  # the large shapes of copy and near become lists of two, the small ones groups
        opt = _Patched(opt, _GROUP_NUMEL=64, _LIST_SIZE=2)
    device_grads = [[[g.to(device, dtype) for g in tensors] for tensors in step] for step in grads]
    for step_grads in device_grads:
        for group, tensors in zip(groups, step_grads):
            for p, g in zip(group['params'], tensors):
                p.grad = g
        opt.step()
    return [[p.detach().double().cpu() for p in group['params']] for group in groups]


def _max_error(actual: list[list[Any]], expected: list[list[Any]]) -> float:
    return max((a - e).abs().max().item() for ag, eg in zip(actual, expected) for a, e in zip(ag, eg) if e.numel())


def section_correctness(mode: Mode, rec: Recorder, deadline: float) -> None:
    import torch

    t = _test_optimizer_module()
    t.SHAPES = list(t.SHAPES) + list(mode.corr_extra_shapes)
    grads = t._grads(0, steps=mode.corr_steps, shapes=t.SHAPES)
    expected, counts = t._run_reference(grads)
    rec.set('setup', {'steps': mode.corr_steps, 'shapes': [list(s) for s in t.SHAPES], 'groups': 5,
                      'reference': 'float64 on the CPU (test/maps/test_optimizer.py)',
                      'branches_reached': dict(counts)})
    # A device path passes when its error against the float64 reference is at most twice that of the CPU
    # single-tensor loop in the same dtype, plus a small floor (the rounding of one dtype ulp of the step).
    floors = {'float32': 1e-6, 'bfloat16': 1e-3}
    rows, baselines = {}, {}
    for path, dtype_name in mode.corr_cases:
        key = f'{path} {dtype_name}'
        if key in mode.skip_reasons:
            rec.skip(key, mode.skip_reasons[key])
            continue
        if _seconds_left(deadline) < 15:
            rec.skip(key, 'section budget spent')
            continue
        dtype = getattr(torch, dtype_name)
        if dtype_name not in baselines:
            baselines[dtype_name] = _max_error(_run_scenario(t, grads, dtype, 'cpu', 'single'), expected)
        start = time.perf_counter()
        error = _max_error(_run_scenario(t, grads, dtype, mode.device, path), expected)
        baseline = baselines[dtype_name]
        rows[key] = {'path': path, 'dtype': dtype_name, 'device': mode.device, 'max_abs_error': error,
                     'cpu_single_max_abs_error': baseline, 'passed': error <= 2 * baseline + floors[dtype_name],
                     'seconds': time.perf_counter() - start}
        rec.set('paths', rows)


# ------------------------------------------------------------------------------------------------ 3. inference


def section_inference(mode: Mode, rec: Recorder, deadline: float) -> None:
    import numpy as np
    import torch

    import policy_inference as pi
    from maps_vla.model import make_policy, make_policy_config

    device = torch.device(mode.device)
    dtype = torch.bfloat16 if mode.device == 'cuda' else torch.float32
    base = make_policy_config(mode.preset)
    rec.set('setup', {'preset': mode.preset, 'dtype': str(dtype), 'head': base.head.type,
                      'chunk_size': base.chunk_size, 'action_dim': base.action_dim,
                      'iters': mode.infer_iters, 'warmup': mode.infer_warmup})
    rows = {}
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    policies = {}
    for views in (2, 1):
        cfg = base.replace(cameras=pi._CAMERAS[:views])
        policies[views] = (cfg, make_policy(cfg, device=device, dtype=dtype).eval(), pi._observation(cfg, rng))
    # The cheap variants of both view counts first, then the compiled ones, which take a minute or more each.
    order = [(views, v) for phase in (False, True) for views in (2, 1) for v in mode.infer_variants
             if ('compile' in v) == phase]
    for views, variant in order:
        cfg, policy, obs = policies[views]
        key = f'{views} views {variant}'
        if variant in mode.skip_reasons:
            rec.skip(key, mode.skip_reasons[variant])
            continue
        if _seconds_left(deadline) < (60 if 'compile' in variant else 10):
            rec.skip(key, 'section budget spent')
            continue
        start = time.perf_counter()
        try:
            if variant == 'infer':
                with torch.inference_mode():
                    times = pi._time(lambda: policy.infer(obs), mode.infer_iters, mode.infer_warmup, device)
            else:
                flags = SimpleNamespace(compile='compile' in variant, cuda_graphs='cuda graph' in variant)
                with torch.no_grad():
                    fn = pi._model_step(policy, obs, flags)
                    times = pi._time(fn, mode.infer_iters, mode.infer_warmup, device)
        except Exception as error:  # one variant failing (e.g. a graph break under capture) keeps the rest
            rec.skip(key, f'failed: {type(error).__name__}: {error}'[:500])
            continue
        summary = pi._summary(times)
        rows[key] = {'views': views, 'variant': variant, **summary, 'actions_per_s': cfg.chunk_size * summary['hz'],
                     'seconds_with_warmup': time.perf_counter() - start}
        rec.set('latency', rows)


# ------------------------------------------------------------------------------------------------ 4. training


def section_training(mode: Mode, rec: Recorder, deadline: float) -> None:
    import torch

    import policy_inference as pi
    from maps_vla.maps.factory import FinetuneMethodConfig, make_optimizer
    from maps_vla.maps.optimizer import SPDAdam
    from maps_vla.maps.param_groups import maps_param_groups
    from maps_vla.model import make_policy, make_policy_config

    device = torch.device(mode.device)
    dtype = torch.bfloat16 if mode.device == 'cuda' else torch.float32
    lr = 1e-5
    cfg = make_policy_config(mode.preset)
    policy = make_policy(cfg, device=device, dtype=dtype)
    args = SimpleNamespace(preset=mode.preset, train_batch=mode.train_batch, train_steps=mode.train_steps,
                           warmup=mode.train_warmup, grad_ckpt=False, optimizer='adamw', lr=lr)
    rec.set('setup', {'preset': mode.preset, 'dtype': str(dtype), 'views': cfg.num_views,
                      'batch': mode.train_batch, 'steps': mode.train_steps, 'warmup': mode.train_warmup,
                      'params': sum(p.numel() for p in policy.parameters())})
    makers = {
        'AdamW fused': lambda m: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=lr,
                                                   fused=True),
        'MAPS (SPDAdam foreach, as the trainer builds it)': lambda m: make_optimizer(
            FinetuneMethodConfig(method='maps', lambda_max=1.0, lr=lr), m)[0],
        'MAPS (SPDAdam fused)': lambda m: SPDAdam(maps_param_groups(m, 1.0, 'linear', anchor='copy'), lr=lr,
                                                  fused=True),
    }
    rows = {}
    for name, maker in makers.items():
        if _seconds_left(deadline) < 20:
            rec.skip(name, 'section budget spent')
            continue
        out = pi._train(policy, args, device, make_optimizer=maker, time_optimizer=True)
        out['optimizer_share'] = out['optimizer_ms'] / out['step_ms']
        rows[name] = out
        rec.set('throughput', rows)
        if mode.device == 'cuda':
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------ 5. demo


def run_demo(mode: Mode, work: Path, budget: float, extra_args: list[str]) -> dict[str, Any]:
    """`maps-vla demo` through its CLI in a subprocess, within ``budget`` seconds; its summary and success table."""
    out = work / 'demo'
    cmd = [sys.executable, '-m', 'maps_vla.cli', 'demo', *mode.demo_args, *extra_args, '--out', str(out)]
    result: dict[str, Any] = {'command': ' '.join(['python', *cmd[1:]])}
    if mode.device == 'cpu':  # the GPU run's arguments must still parse and name a demo size
        result['gpu_arguments_check'] = _check_demo_arguments(FULL.demo_args)
    code, seconds, timed_out, tail = _run_logged(cmd, work / 'demo.log', budget)
    result.update(returncode=code, seconds=seconds, timed_out=timed_out, output_tail=tail)
    for name in ('summary.md', 'success.md'):
        if (out / name).exists():
            result[name] = (out / name).read_text()[:6000]
    return result


def _check_demo_arguments(arguments: tuple[str, ...]) -> str:
    """'ok', or why `maps-vla demo` would refuse these arguments (its own parser and size registry decide)."""
    try:
        from maps_vla.demo import demo_config
        from maps_vla.scripts.demo import add_arguments

        parser = argparse.ArgumentParser(exit_on_error=False)
        add_arguments(parser)
        demo_config(parser.parse_args(list(arguments)).size)
    except (Exception, SystemExit) as error:  # whatever the demo raises, the dry run reports it
        return f'{type(error).__name__}: {error}'
    return 'ok'


# ------------------------------------------------------------------------------------------------ orchestration


_SECTION_FUNCTIONS = {'optimizer': section_optimizer, 'correctness': section_correctness,
                      'inference': section_inference, 'training': section_training}


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.setdefault('MUJOCO_GL', 'egl')
    env.setdefault('PYOPENGL_PLATFORM', 'egl')
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT / 'src')] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def _run_logged(cmd: list[str], log: Path, budget: float) -> tuple[int | None, float, bool, str]:
    """Runs ``cmd`` in its own process group with output to ``log``; kills the group after ``budget`` seconds.

    Returns (return code or None when killed, seconds, timed out, the log's last 3000 characters).
    """
    start = time.perf_counter()
    with open(log, 'wb') as f:
        process = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=_env(),
                                   start_new_session=True)
        try:
            code, timed_out = process.wait(timeout=max(1.0, budget)), False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code, timed_out = None, True
    tail = log.read_bytes()[-3000:].decode(errors='replace')
    return code, time.perf_counter() - start, timed_out, tail


def run_section(name: str, mode: Mode, dry_run: bool, work: Path, budget: float) -> dict[str, Any]:
    """One section in a subprocess (``--worker``); its status, seconds, results, skips and, on failure, log tail."""
    data_path = work / f'{name}.json'
    data_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', name, '--work', str(work),
           '--deadline', str(time.time() + budget - 5)] + (['--dry-run'] if dry_run else [])
    code, seconds, timed_out, tail = _run_logged(cmd, work / f'{name}.log', budget)
    data = json.loads(data_path.read_text()) if data_path.exists() else {'results': {}, 'skipped': {}}
    status = 'timeout' if timed_out else ('ok' if code == 0 else 'failed')
    entry = {'status': status, 'seconds': round(seconds, 1), 'budget_s': round(budget), **data}
    if status != 'ok':
        entry['log_tail'] = tail
    return entry


def _meta(mode: Mode, dry_run: bool) -> dict[str, Any]:
    import torch

    meta = {'started_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'dry_run': dry_run, 'device': mode.device, 'torch': torch.__version__, 'python': platform.python_version(),
            'host_cpu': platform.processor() or platform.machine(), 'cpu_count': os.cpu_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        meta.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                    cuda=torch.version.cuda)
    try:
        meta['git_commit'] = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                                            text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        meta['git_commit'] = None
    return meta


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(report, indent=1, default=str))
    (out / MD_NAME).write_text(markdown(report))


# ------------------------------------------------------------------------------------------------ markdown


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'{v:.3g}' if abs(v) < 1e-2 or abs(v) >= 1e4 else f'{v:.2f}'
        return str(v).replace('|', '/').replace('\n', ' ')
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def _md_optimizer(r: dict[str, Any]) -> list[str]:
    out = []
    if 'setup' in r:
        s = r['setup']
        out.append(f"{s['params'] / 1e6:.1f} M fp32 parameters in {s['tensors']} tensors ({s['distinct_shapes']} "
                   f"shapes, preset {s['preset']}); the projection triggers on "
                   f"{100 * s['projected_fraction_first_step']:.0f} % of the λ > 0 tensors at the first step.")
    launches = r.get('launches', {})
    if 'steps' in r:
        rows = []
        for name, v in r['steps'].items():
            counted = launches.get(name, {})
            kernels = counted.get('kernel_launches', counted.get('aten_ops_top_level', ''))
            per_tensor = counted.get('fused_kernel_calls_per_tensor', '')
            rows.append([name, v['median_ms'], v['min_ms'], v['x_adamw_fused'], v['traffic_bytes_per_param'],
                         v['bytes_moved_gb'], v['bandwidth_gb_s'], kernels, per_tensor, v['first_step_s']])
        launch_label = 'kernel launches/step' if any('kernel_launches' in v for v in launches.values()) \
            else 'aten ops/step (CPU)'
        out.append(_table(['implementation', 'median ms', 'min ms', '× AdamW fused', 'traffic B/param',
                           'GB moved', 'GB/s', launch_label, 'fused kernel calls/tensor', 'first step s'], rows))
    for key in ('plan_minivla', 'plan_tiny'):
        if key in r:
            p = r[key]
            out.append(f"Fused grouping plan, {key[5:]}: {p['tensors']} tensors ({p['projected_tensors']} projected), "
                       f"{p['grouped_tensors']} of ≤ {p['group_numel']} elements in {p['groups']} padded groups, "
                       f"{p.get('listed_tensors', 0)} larger ones in {p.get('lists', 0)} equal-size lists of "
                       f"{p.get('list_size', '-')}, {p['single_tensors']} single; compiled calls per step "
                       f"{p['compiled_calls_per_step_grouped']} grouped vs {p['compiled_calls_per_step_per_tensor']} "
                       "per tensor.")
    return out


def _md_correctness(r: dict[str, Any]) -> list[str]:
    out = []
    if 'setup' in r:
        s = r['setup']
        out.append(f"{s['steps']} steps of the test scenario (5 groups × shapes {s['shapes']}) against the "
                   f"{s['reference']}; branches reached: {s['branches_reached']}.")
    rows = [[v['path'], v['dtype'], v['device'], v['max_abs_error'], v['cpu_single_max_abs_error'],
             'yes' if v['passed'] else '**no**'] for v in r.get('paths', {}).values()]
    if rows:
        out.append(_table(['path', 'dtype', 'device', 'max abs error vs float64', 'CPU single-tensor error',
                           'passed'], rows))
    return out


def _md_inference(r: dict[str, Any]) -> list[str]:
    out = []
    if 'setup' in r:
        s = r['setup']
        out.append(f"Preset {s['preset']}, {s['dtype']}, {s['head']} head, one chunk of {s['chunk_size']} × "
                   f"{s['action_dim']} actions; {s['iters']} timed calls after {s['warmup']} warm-up calls. "
                   "`infer` is numpy in, numpy out; the others are the tensor path. Target ≤ 10 ms from 2 views.")
    rows = [[v['views'], v['variant'], v['p50_ms'], v['p99_ms'], v['mean_ms'], v['actions_per_s']]
            for v in r.get('latency', {}).values()]
    if rows:
        out.append(_table(['views', 'variant', 'p50 ms', 'p99 ms', 'mean ms', 'actions/s'], rows))
    return out


def _md_training(r: dict[str, Any]) -> list[str]:
    out = []
    if 'setup' in r:
        s = r['setup']
        out.append(f"Preset {s['preset']} ({s['params'] / 1e6:.1f} M parameters), {s['dtype']}, {s['views']} views, "
                   f"batch {s['batch']}, {s['steps']} timed steps after {s['warmup']}. The optimizer step is timed "
                   "between two synchronizations. Target: MAPS's share ≤ 3 %.")
    rows = [[name, v['samples_per_s'], v['step_ms'], v['optimizer_ms'], f"{100 * v['optimizer_share']:.1f} %",
             v.get('peak_mem_gib', '')] for name, v in r.get('throughput', {}).items()]
    if rows:
        out.append(_table(['optimizer', 'samples/s', 'step ms', 'optimizer ms', 'optimizer share',
                           'peak GiB'], rows))
    return out


def _md_demo(r: dict[str, Any]) -> list[str]:
    out = [f"`{r.get('command', '')}`: exit code {r.get('returncode')}, {r.get('seconds', 0):.0f} s"
           + (' (stopped at the time budget)' if r.get('timed_out') else '') + '.']
    if 'success.md' in r:
        out.append(r['success.md'].strip())
    elif 'summary.md' not in r:
        out.append('No report was written; the end of its output:\n\n```\n' + r.get('output_tail', '')[-1500:]
                   + '\n```')
    return out


_MD = {'optimizer': ('1. SPDAdam step against torch AdamW', _md_optimizer),
       'correctness': ('2. Device kernels against the float64 reference', _md_correctness),
       'inference': ('3. Policy inference', _md_inference),
       'training': ('4. Training throughput', _md_training),
       'demo': ('5. Demo', _md_demo)}


def markdown(report: dict[str, Any]) -> str:
    meta = report['meta']
    where = meta.get('gpu') or f"CPU ({meta.get('host_cpu')}, {meta.get('cpu_count')} cores)"
    lines = [f"# GPU suite{' (dry run)' if meta.get('dry_run') else ''}", '',
             f"{where}, torch {meta.get('torch')}, Python {meta.get('python')}, commit {meta.get('git_commit')}, "
             f"started {meta.get('started_utc')}, {report.get('seconds', 0):.0f} s in all.", '']
    for name, section in report['sections'].items():
        title, render = _MD[name]
        lines += [f'## {title}', '',
                  f"Status: **{section['status']}** in {section.get('seconds', 0):.0f} s "
                  f"(budget {section.get('budget_s', 0)} s).", '']
        try:
            body = render(section.get('results', {}))
        except (KeyError, TypeError, ValueError) as error:  # a partial section must not lose the report
            body = [f'(could not render: {type(error).__name__}: {error})']
        for block in body:
            lines += [block, '']
        for key, reason in section.get('skipped', {}).items():
            lines.append(f'- skipped `{key}`: {reason}')
        if section.get('skipped'):
            lines.append('')
        if section['status'] not in ('ok', 'skipped') and section.get('log_tail'):
            lines += ['```', section['log_tail'][-1500:].strip(), '```', '']
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------ entry points


def worker(name: str, mode: Mode, work: Path, deadline: float) -> int:
    rec = Recorder(work / f'{name}.json')
    try:
        _SECTION_FUNCTIONS[name](mode, rec, deadline)
    except Exception:
        rec.data['error'] = traceback.format_exc()[-3000:]
        rec._write()
        raise
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=None, help='folder for gpu_suite.json and gpu_suite.md (default: $OUT)')
    parser.add_argument('--work', default=None, help='scratch folder (default: a new temporary folder)')
    parser.add_argument('--dry-run', action='store_true', help='toy sizes on the CPU (the CI check)')
    parser.add_argument('--sections', nargs='+', default=list(SECTIONS), choices=SECTIONS, metavar='SECTION',
                        help=f'subset of: {", ".join(SECTIONS)}')
    parser.add_argument('--total-budget', type=float, default=None,
                        help='seconds for the whole run; the demo gets what the others leave (default: 540, '
                             'dry run 300)')
    parser.add_argument('--budget', action='append', default=[], metavar='SECTION=SECONDS',
                        help="a section's own budget instead of its default (repeat it), e.g. correctness=200")
    parser.add_argument('--demo-arg', action='append', default=[], metavar='ARG',
                        help='extra argument for `maps-vla demo` (repeat it), e.g. --demo-arg=--steps=2000')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--deadline', type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = DRY if args.dry_run else FULL
    try:  # the fused kernels' first compiles can outlast a default budget (60 s held 3 of 10 correctness paths)
        budgets = {name: float(seconds) for name, seconds in (item.split('=') for item in args.budget)}
    except ValueError:
        parser.error(f'--budget takes SECTION=SECONDS, got {args.budget}')
    if set(budgets) - set(mode.budgets):
        parser.error(f'--budget: no section {sorted(set(budgets) - set(mode.budgets))}; one of {sorted(mode.budgets)}')
    mode = dataclasses.replace(mode, budgets={**mode.budgets, **budgets})
    if args.worker:
        return worker(args.worker, mode, Path(args.work), args.deadline or time.time() + 600)
    out = args.out or os.environ.get('OUT')
    if not out:
        parser.error('give --out DIR (or set $OUT)')
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        parser.error(f'no CUDA device is visible to torch {torch.__version__}; use --dry-run on a CPU')
    out, work = Path(out), Path(args.work or tempfile.mkdtemp(prefix='gpu_suite_'))
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    deadline = start + (args.total_budget or mode.total_budget)
    report: dict[str, Any] = {'meta': _meta(mode, args.dry_run), 'sections': {}, 'seconds': 0.0}
    for name in args.sections:
        left = deadline - time.time()
        budget = left if name == 'demo' else min(mode.budgets[name], left)
        if budget < 20:
            report['sections'][name] = {'status': 'skipped', 'seconds': 0, 'results': {},
                                        'skipped': {name: f'total budget spent ({left:.0f} s left)'}}
        elif name == 'demo':
            begin = time.time()
            result = run_demo(mode, work, budget, args.demo_arg)
            status = 'timeout' if result['timed_out'] else ('ok' if result['returncode'] == 0 else 'failed')
            report['sections'][name] = {'status': status, 'seconds': round(time.time() - begin, 1),
                                        'budget_s': round(budget), 'results': result, 'skipped': {}}
        else:
            report['sections'][name] = run_section(name, mode, args.dry_run, work, budget)
        report['seconds'] = time.time() - start
        write_report(out, report)
        print(f"gpu_suite: {name}: {report['sections'][name]['status']} "
              f"({report['sections'][name].get('seconds', 0):.0f} s)", flush=True)
    print(f'gpu_suite: wrote {out / JSON_NAME} and {out / MD_NAME} ({report["seconds"]:.0f} s in all)')
    return 0 if all(s['status'] in ('ok', 'skipped') for s in report['sections'].values()) else 1


if __name__ == '__main__':
    raise SystemExit(main())
