"""SPDAdam: Adam with selective projection decay (SPD) toward an anchor, one strength λ per param group (MAPS).

Laid out like ``torch/optim/adam.py``: the :class:`SPDAdam` class gathers per-group tensor lists and calls the
functional :func:`spd_adam`, which runs one of three kernels that share one signature and do the same math:
``_single_tensor_spd_adam`` (the readable reference), ``_foreach_spd_adam`` (``torch._foreach_*`` ops, the default)
and ``_fused_spd_adam`` (``torch.compile`` of the per-tensor math: C++ on CPU, Triton on CUDA; one compiled call
serves a padded group of small tensors or a list of equal-size large ones, so a MiniVLA's ~1150 tensors take ~210
calls per step instead of ~1800).

Every kernel works in two passes so that sharded tensors need one collective per step: pass 1 updates the moments
and records three partial sums per tensor, ``[gᵀ(θ−θ₀), ‖θ−θ₀‖², ‖θ̃−θ₀‖²]``; the rows of sharded tensors are
all-reduced in one call; pass 2 recomputes the Adam candidate θ̃ from the stored moments and moves it toward θ₀.
The decision and the ratio are 0-dim tensors combined with ``torch.where``, so no pass reads a tensor value on the
host.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.optim.optimizer import Optimizer, ParamsT

if dist.is_available():
    from torch.distributed.tensor import DTensor
else:  # pragma: no cover - torch built without distributed
    DTensor = None

__all__ = ['SPDAdam', 'spd_adam']

logger = logging.getLogger(__name__)

_ANCHOR_MODES = ('copy', 'zero', 'explicit')
_FUSED_DEVICES = ('cpu', 'cuda', 'xpu')
# Anchored tensors are processed in chunks of this many elements in the foreach path. It bounds the temporaries
# (θ−θ₀ and, for anchors kept on another device, the moved anchors) to a slice of the model.
_CHUNK_NUMEL = 1 << 25
# The fused path steps tensors of at most this many elements in groups, one compiled kernel per group and pass
# instead of one per tensor (a MiniVLA has ~700 such biases, norms and scales among its ~1150 tensors); 0 turns
# grouping off. Larger tensors are not copied into buffers, which would cost more memory traffic than the call it
# saves; they step in lists (below) or one per call.
_GROUP_NUMEL = 1 << 16
# Elements per group buffer (rows × padded row length), which bounds the temporaries of one group.
_GROUP_BUFFER_NUMEL = 1 << 22
# Larger tensors of equal size (the same projection in every block) step this many to a compiled call, in place
# and without copies: one call's fixed host cost then serves several tensors. Fewer than 2 turns it off.
_LIST_SIZE = 8

_PartialReducer = Callable[[Tensor], None]


class SPDAdam(Optimizer):
    r"""Adam with selective projection decay (SPD) toward an anchor θ₀, with one strength λ per param group.

    This is SPD (Tian et al., NeurIPS 2024, https://arxiv.org/abs/2411.01713, Alg. 2) as used by MAPS (Huang,
    Zhang et al., CVPR 2026, https://arxiv.org/abs/2511.19878), where a module-wise schedule gives every param group
    its own λ. For each parameter tensor θ with gradient g at step t (norms and dot products run over the whole
    tensor; one decision per tensor, never per element)::

        m_t  = β₁ m_{t-1} + (1 − β₁) g                       v_t = β₂ v_{t-1} + (1 − β₂) g²
        θ̃_t  = θ_{t-1} − lr / (1 − β₁ᵗ) · m_t / (√v_t / √(1 − β₂ᵗ) + eps)        (plain Adam, no weight decay)
        c_t  = −gᵀ(θ_{t-1} − θ₀)                      (raw gradient and the pre-step parameter)
        if c_t < 0:                                   (the descent direction points back toward θ₀)
            γ_t, γ_{t-1} = ‖θ̃_t − θ₀‖₂, ‖θ_{t-1} − θ₀‖₂
            r_t = clamp((γ_t − γ_{t-1}) / γ_t, 0, 1)
            θ_t = θ̃_t − min(λ r_t, max_decay) (θ̃_t − θ₀)
        else:
            θ_t = θ̃_t

    λ is not scaled by lr (r_t already shrinks with the step). With ``max_decay=None`` (the official code) λ r_t is
    not clamped, so λ > 1 can move θ past θ₀; ``max_decay=1.0`` stops at θ₀ (maps_spd.md §4.6). λ = 0 skips the
    projection, so such groups are :class:`torch.optim.Adam` (``weight_decay=0``, ``amsgrad=False``): bit for bit
    with ``foreach=False``/``True`` (same op order), to rounding with ``fused=True``. Since γ_{t-1} ≥ 0, r_t ≤ 1
    always; the upper clamp only guards rounding.

    Anchors. ``anchor='copy'`` stores θ₀ as a copy of the parameters when the group is added (so build the optimizer
    before the first step, after any LoRA injection). ``anchor='zero'`` uses θ₀ = 0 and stores nothing (the SPD
    paper's PEFT recipe; also the memory-free choice for groups whose λ stays 0). A group dict may carry
    ``'anchors'``: tensors aligned with its ``'params'`` (same shapes; DTensors for DTensor params) that are used as
    θ₀ without a copy where device and dtype already match. Anchors live in ``state[p]['anchor']`` and are saved and
    restored by :meth:`state_dict` / :meth:`load_state_dict` in the dtype and on the device their group asks for.

    Precision. The candidate, the reductions and the projection are computed in float32 for bfloat16/float16
    parameters (float64 stays float64) and written back once. The moments follow the parameter dtype, as in
    torch's Adam. Decisions and ratios are computed in float64. No kernel reads a tensor value on the host: the
    decision is a ``torch.where`` on 0-dim tensors, and the step counter lives on the CPU as in torch's Adam with
    ``capturable=False``. With :class:`torch.amp.GradScaler`, ``scaler.step(opt)`` unscales the gradients and skips
    steps with inf/NaN before calling :meth:`step`.

    Distributed. Under DDP the averaged ``.grad`` is used as is. Parameters that are DTensors (FSDP2
    ``fully_shard``, sharded on dim 0) are stepped on their local shards; their partial dot products and squared
    norms are summed over the mesh dimensions they are sharded on, with one ``all_reduce`` per step for all
    tensors (one per distinct shard group and per distinct ``(betas, eps, foreach, fused)`` among the groups).
    Anchors of DTensor parameters are DTensors with the same placements, so distributed state dicts work.

    Args:
        params (iterable): parameters, named parameters, or dicts defining parameter groups. A group dict may
            override any argument below and may carry ``'anchors'``; other keys (such as ``'name'``) are kept.
        lr (float, optional): learning rate (default: 1e-3).
        betas (tuple[float, float], optional): coefficients of the running averages of the gradient and its square
            (default: (0.9, 0.999)).
        eps (float, optional): term added to the denominator (default: 1e-8).
        lam (float, optional): SPD strength λ ≥ 0 of the projection; 0 is plain Adam (default: 0.0).
        anchor (str, optional): ``'copy'`` (θ₀ = the parameters when the group is added) or ``'zero'`` (θ₀ = 0)
            (default: ``'copy'``).
        anchor_device (str | torch.device, optional): where copied or given anchors are kept, e.g. ``'cpu'`` to
            save accelerator memory; they are moved to the parameter's device in slices during each step. None keeps
            them on the parameter's device (default: None).
        anchor_dtype (torch.dtype, optional): dtype of the stored anchors, e.g. ``torch.bfloat16``; None uses the
            parameter dtype (default: None).
        max_decay (float, optional): upper bound on λ r_t; None leaves it unbounded like the official code
            (default: None).
        foreach (bool, optional): use the ``torch._foreach_*`` kernel. None picks it unless ``fused`` is True. It
            needs about one parameter-sized temporary more than the single-tensor loop (default: None).
        fused (bool, optional): use the ``torch.compile`` kernel (one fused pass for the moments and the three
            reductions, one for the projection). The first step compiles it, which takes tens of seconds. Small
            tensors step in zero-padded groups whose buffers the optimizer keeps (about twice their size, per
            buffer operand), equal-size large ones in lists of eight. Supports floating-point tensors on CPU, CUDA
            and XPU (default: None).

    Raises:
        ValueError: a hyperparameter is out of range or the anchors do not match the parameters.
        TypeError: a hyperparameter has the wrong type.
        RuntimeError: ``fused`` and ``foreach`` are both True, or ``fused`` meets an unsupported tensor.

    Example:
        >>> opt = SPDAdam([{'params': vision.parameters(), 'lam': 1.0, 'name': 'vision'},
        ...                {'params': head.parameters(), 'lam': 0.0, 'anchor': 'zero'}], lr=5e-5)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        lam: float = 0.0,
        *,
        anchor: str = 'copy',
        anchor_device: str | torch.device | None = None,
        anchor_dtype: torch.dtype | None = None,
        max_decay: float | None = None,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = _validated({
            'lr': lr, 'betas': betas, 'eps': eps, 'lam': lam, 'anchor': anchor, 'anchor_device': anchor_device,
            'anchor_dtype': anchor_dtype, 'max_decay': max_decay, 'foreach': foreach, 'fused': fused,
        }, where='')
        if defaults['anchor'] == 'explicit':
            raise ValueError("Invalid anchor: 'explicit' (pass 'anchors' inside a param group instead)")
        # The fused path's small-tensor group buffers, per batch of groups that step together (not saved).
        self._group_buffers: dict[tuple[Any, ...], dict[Any, Any]] = {}
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._group_buffers = {}
        for group in self.param_groups:
            group.setdefault('lam', 0.0)
            group.setdefault('anchor', 'copy')
            group.setdefault('anchor_device', None)
            group.setdefault('anchor_dtype', None)
            group.setdefault('max_decay', None)
            group.setdefault('foreach', None)
            group.setdefault('fused', None)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group, validates its hyperparameters and stores its anchors (see the class docstring).

        Args:
            param_group: ``{'params': ..., 'lam': ..., 'anchors': [...] (optional), ...}``; extra keys are kept.

        Raises:
            ValueError, TypeError, RuntimeError: as for the constructor, quoting the group index.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f'param_group must be a dict, but got {type(param_group).__name__}')
        group = dict(param_group)
        where = f' in param group {len(self.param_groups)}' + (f" ({group['name']!r})" if 'name' in group else '')
        params = group['params']
        group['params'] = [params] if isinstance(params, Tensor) else list(params)
        tensors = [p[1] if isinstance(p, tuple) else p for p in group['params']]
        explicit = group.pop('anchors', None)
        if explicit is not None:
            if group.get('anchor', 'explicit') != 'explicit':
                raise ValueError(f"Invalid anchor: {group['anchor']!r} together with 'anchors'{where} "
                                 "(give one of them)")
            group['anchor'] = 'explicit'
            explicit = list(explicit)
            _check_explicit_anchors(tensors, explicit, where)
        elif group.get('anchor') == 'explicit':
            raise ValueError(f"Invalid anchor: 'explicit' without an 'anchors' list{where}")
        merged = _validated({**self.defaults, **{k: v for k, v in group.items() if k in self.defaults}}, where)
        group.update(merged)
        if group['fused']:
            _check_fused_support(tensors)
        for t in tensors:
            if isinstance(t, Tensor) and t.is_complex():
                raise TypeError(f'SPDAdam does not support complex parameters (got {t.dtype}){where}')
        super().add_param_group(group)
        added = self.param_groups[-1]
        if added['anchor'] != 'zero':
            sources = explicit if explicit is not None else added['params']
            for p, src in zip(added['params'], sources):
                self.state[p]['anchor'] = _make_anchor(p, src, added['anchor_device'], added['anchor_dtype'],
                                                       copy=explicit is None)
            logger.debug('stored %d anchors%s (%s)', len(added['params']), where, added['anchor'])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state dict; anchors keep the device and dtype their group asks for.

        ``Optimizer.load_state_dict`` casts every floating-point state tensor to its parameter's dtype and device.
        Anchors are taken out before that and placed afterwards with the group's ``anchor_device``/``anchor_dtype``,
        so a bf16 or CPU anchor is never inflated or moved to the accelerator on the way.

        Args:
            state_dict: as returned by :meth:`state_dict`.

        Raises:
            ValueError: a group with a stored anchor (``'copy'``/``'explicit'``) has parameters without one.
        """
        saved = state_dict['state']
        anchors = {pid: s['anchor'] for pid, s in saved.items() if isinstance(s, dict) and 'anchor' in s}
        for index, saved_group in enumerate(state_dict['param_groups']):
            if saved_group.get('anchor', 'copy') == 'zero':
                continue
            missing = [pid for pid in saved_group['params'] if pid not in anchors]
            if missing:
                raise ValueError(f'state_dict has no anchor for params {missing[:5]} of param group {index} '
                                 f"(anchor={saved_group.get('anchor', 'copy')!r}); it was not written by SPDAdam")
        stripped = {pid: ({k: v for k, v in s.items() if k != 'anchor'} if pid in anchors else s)
                    for pid, s in saved.items()}
        super().load_state_dict({**state_dict, 'state': stripped})
        for saved_group, group in zip(state_dict['param_groups'], self.param_groups):
            for pid, p in zip(saved_group['params'], group['params']):
                if pid in anchors:
                    self.state[p]['anchor'] = _make_anchor(p, anchors[pid], group['anchor_device'],
                                                           group['anchor_dtype'], copy=False)

    def _init_group(self, index: int, group: dict[str, Any], batch: _Batch) -> None:
        zero = group['anchor'] == 'zero'
        for p in group['params']:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError('SPDAdam does not support sparse gradients; use dense ones '
                                   '(e.g. nn.Embedding(..., sparse=False)) or step those parameters with '
                                   'torch.optim.SparseAdam in a separate optimizer')
            state = self.state[p]
            if 'step' not in state:
                state['step'] = torch.tensor(0.0, dtype=torch.float32)
                state['exp_avg'] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state['exp_avg_sq'] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if not zero and 'anchor' not in state:
                raise RuntimeError(f"param group {index} has anchor={group['anchor']!r} but a parameter has no "
                                   "stored anchor")
            batch.params.append(p)
            batch.grads.append(p.grad)
            batch.exp_avgs.append(state['exp_avg'])
            batch.exp_avg_sqs.append(state['exp_avg_sq'])
            batch.anchors.append(None if zero else state['anchor'])
            batch.state_steps.append(state['step'])
            batch.lr.append(group['lr'])
            batch.lam.append(group['lam'])
            batch.max_decay.append(group['max_decay'])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Performs a single optimization step.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Groups that share the kernel settings step together, so sharded tensors need one all_reduce in total.
        batches: dict[tuple[Any, ...], _Batch] = {}
        for index, group in enumerate(self.param_groups):
            key = (*group['betas'], group['eps'], group['foreach'], group['fused'])
            self._init_group(index, group, batches.setdefault(key, _Batch()))
        for key, batch in batches.items():
            beta1, beta2, eps, foreach, fused = key
            spd_adam(batch.params, batch.grads, batch.exp_avgs, batch.exp_avg_sqs, batch.anchors,
                     batch.state_steps, foreach=foreach, fused=fused, beta1=beta1, beta2=beta2, lr=batch.lr,
                     eps=eps, lam=batch.lam, max_decay=batch.max_decay,
                     group_buffers=self._group_buffers.setdefault(key, {}) if fused else None)
        return loss


@dataclass
class _Batch:
    """Per-tensor lists of the groups that step with one kernel call."""

    params: list[Tensor] = field(default_factory=list)
    grads: list[Tensor] = field(default_factory=list)
    exp_avgs: list[Tensor] = field(default_factory=list)
    exp_avg_sqs: list[Tensor] = field(default_factory=list)
    anchors: list[Tensor | None] = field(default_factory=list)
    state_steps: list[Tensor] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    lam: list[float] = field(default_factory=list)
    max_decay: list[float | None] = field(default_factory=list)


def spd_adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    anchors: list[Tensor | None],
    state_steps: list[Tensor],
    foreach: bool | None = None,
    fused: bool | None = None,
    *,
    beta1: float,
    beta2: float,
    lr: float | Sequence[float],
    eps: float,
    lam: float | Sequence[float],
    max_decay: float | None | Sequence[float | None] = None,
    group_buffers: dict[Any, Any] | None = None,
) -> None:
    r"""Functional API that performs the SPDAdam computation. See :class:`SPDAdam` for details.

    ``anchors[i]`` is θ₀ of ``params[i]`` or None for θ₀ = 0. ``lr``, ``lam`` and ``max_decay`` are one value or one
    per tensor. ``state_steps`` are float32 CPU tensors incremented in place. DTensor arguments are stepped on their
    local shards with the partial reductions summed over their shard groups. ``group_buffers`` (fused only): a dict
    that keeps the buffers of the small-tensor groups from one call to the next (pass the same one every step for
    the same tensors); None makes them anew each call.
    """
    n = len(params)
    lists = {'grads': grads, 'exp_avgs': exp_avgs, 'exp_avg_sqs': exp_avg_sqs, 'anchors': anchors,
             'state_steps': state_steps}
    for name, values in lists.items():
        if len(values) != n:
            raise ValueError(f'{name} has {len(values)} entries but params has {n}')
    if fused and foreach:
        raise RuntimeError('`fused` and `foreach` cannot be `True` together.')
    lrs, lams = _per_tensor(lr, n, 'lr'), _per_tensor(lam, n, 'lam')
    caps = [math.inf if c is None else float(c) for c in _per_tensor(max_decay, n, 'max_decay')]
    keys = [_shard_groups(p, anchors[i]) for i, p in enumerate(params)]
    # Sharded tensors first, grouped by shard group, so each group's partial rows form one contiguous slice.
    ranks = {k: r for r, k in enumerate(dict.fromkeys(k for k in keys if k))}
    order = sorted(range(n), key=lambda i: ranks.get(keys[i], len(ranks)))
    local = [_local(t) for t in (params[i] for i in order)]
    args = ([_local(grads[i]) for i in order], [_local(exp_avgs[i]) for i in order],
            [_local(exp_avg_sqs[i]) for i in order], [_local(anchors[i]) for i in order],
            [state_steps[i] for i in order])
    reducer = _partial_reducer([keys[i] for i in order if lams[i] != 0])
    kernel = _fused_spd_adam if fused else (_single_tensor_spd_adam if foreach is False else _foreach_spd_adam)
    extra = {'group_buffers': group_buffers} if fused else {}
    kernel(local, *args, beta1=beta1, beta2=beta2, lrs=[lrs[i] for i in order], eps=eps,
           lams=[lams[i] for i in order], max_decays=[caps[i] for i in order], reduce_partials=reducer, **extra)


# ------------------------------------------------------------------------------------------------ shared math


def _compute_dtype(t: Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _upcast(t: Tensor) -> Tensor:
    """``t`` itself for float32/float64, a float32 copy for bfloat16/float16."""
    dtype = _compute_dtype(t)
    return t if t.dtype == dtype else t.to(dtype)


def _anchor_like(anchor: Tensor, theta: Tensor) -> Tensor:
    return anchor.to(device=theta.device, dtype=theta.dtype, non_blocking=True)


def _bias_corrections(step_t: Tensor, lr: float, beta1: float, beta2: float) -> tuple[float, float]:
    # The step counter lives on the CPU (as in torch's Adam with capturable=False), so reading it never waits on
    # the accelerator.
    return _corrections(step_t.item(), lr, beta1, beta2)


def _corrections(step: float, lr: float, beta1: float, beta2: float) -> tuple[float, float]:
    """(step size lr / (1 − β₁ᵗ), √(1 − β₂ᵗ)) at step ``step``."""
    return lr / (1 - beta1**step), (1 - beta2**step) ** 0.5


def _partial_rows(dots: Sequence[Tensor], before: Sequence[Tensor], after: Sequence[Tensor]) -> Tensor:
    """Stacks per-tensor ``gᵀd``, ``‖d‖`` and ``‖d̃‖`` into float64 rows ``[gᵀd, ‖d‖², ‖d̃‖²]``."""
    rows = torch.stack([torch.stack(list(dots)), torch.stack(list(before)), torch.stack(list(after))], 1)
    rows = rows.to(torch.float64)
    rows[:, 1:].square_()
    return rows


def _decay_weights(partials: Tensor, lams: Sequence[float], caps: Sequence[float],
                   reduce_partials: _PartialReducer | None) -> Tensor:
    """Turns partial rows ``[gᵀd, ‖d‖², ‖d̃‖²]`` (T, 3) into the weights ``[c<0]·min(λ r, max_decay)`` (T,)."""
    if reduce_partials is not None:
        reduce_partials(partials)
    dot, before_sq, after_sq = partials.unbind(1)
    before, after = before_sq.sqrt(), after_sq.sqrt()
    ratio = ((after - before) / after).clamp(0.0, 1.0)
    weight = torch.minimum(_column(lams, partials.device) * ratio, _column(caps, partials.device))
    # c = −gᵀd < 0  <=>  gᵀd > 0; the other rows (including 0/0 ratios) get weight 0.
    return torch.where(dot > 0, weight, 0.0)


def _column(values: Sequence[float], device: torch.device, dtype: torch.dtype = torch.float64) -> Tensor:
    host = torch.tensor(values, dtype=dtype, pin_memory=device.type == 'cuda')
    return host.to(device, non_blocking=True)


def _stack_rows(rows: list[Tensor]) -> Tensor:
    device = rows[0].device
    return torch.stack([r if r.device == device else r.to(device, non_blocking=True) for r in rows])


# ------------------------------------------------------------------------------------------------ kernels


def _single_tensor_spd_adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    anchors: list[Tensor | None],
    state_steps: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    lrs: list[float],
    eps: float,
    lams: list[float],
    max_decays: list[float],
    reduce_partials: _PartialReducer | None,
) -> None:
    step_sizes, bc2_sqrts, rows = [], [], []
    for i, param in enumerate(params):
        grad, exp_avg, exp_avg_sq = grads[i], exp_avgs[i], exp_avg_sqs[i]
        state_steps[i] += 1
        step_size, bc2_sqrt = _bias_corrections(state_steps[i], lrs[i], beta1, beta2)
        step_sizes.append(step_size)
        bc2_sqrts.append(bc2_sqrt)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (_upcast(exp_avg_sq).sqrt() / bc2_sqrt).add_(eps)
        if lams[i] == 0:
            theta = _upcast(param)
            theta.addcdiv_(_upcast(exp_avg), denom, value=-step_size)
            if theta is not param:
                param.copy_(theta)
            continue
        theta = _upcast(param)
        displacement = theta.clone() if anchors[i] is None else theta - _anchor_like(anchors[i], theta)
        dot = torch.dot(_upcast(grad).reshape(-1), displacement.reshape(-1))
        before = torch.linalg.vector_norm(displacement)
        displacement.addcdiv_(_upcast(exp_avg), denom, value=-step_size)  # now θ̃ − θ₀
        after = torch.linalg.vector_norm(displacement)
        rows.append(_partial_rows([dot], [before], [after])[0])
    projected = [i for i in range(len(params)) if lams[i] != 0]
    if not projected:
        return
    weights = _decay_weights(_stack_rows(rows), [lams[i] for i in projected], [max_decays[i] for i in projected],
                             reduce_partials)
    for weight, i in zip(weights.unbind(0), projected):
        param = params[i]
        theta = _upcast(param)
        denom = (_upcast(exp_avg_sqs[i]).sqrt() / bc2_sqrts[i]).add_(eps)
        theta.addcdiv_(_upcast(exp_avgs[i]), denom, value=-step_sizes[i])
        weight = weight.to(device=theta.device, dtype=theta.dtype, non_blocking=True)
        if anchors[i] is None:
            theta.mul_(1 - weight)
        else:
            theta.lerp_(_anchor_like(anchors[i], theta), weight)
        if theta is not param:
            param.copy_(theta)


def _foreach_spd_adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    anchors: list[Tensor | None],
    state_steps: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    lrs: list[float],
    eps: float,
    lams: list[float],
    max_decays: list[float],
    reduce_partials: _PartialReducer | None,
) -> None:
    if not params:
        return
    n = len(params)
    neg_step_sizes, denoms = [0.0] * n, [None] * n
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault((p.device, p.dtype, anchors[i] is None), []).append(i)

    for idx in groups.values():
        group_grads = [grads[i] for i in idx]
        group_exp_avgs = [exp_avgs[i] for i in idx]
        group_exp_avg_sqs = [exp_avg_sqs[i] for i in idx]
        torch._foreach_add_([state_steps[i] for i in idx], 1)
        torch._foreach_lerp_(group_exp_avgs, group_grads, 1 - beta1)
        torch._foreach_mul_(group_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(group_exp_avg_sqs, group_grads, group_grads, 1 - beta2)
        bc2_sqrts = []
        for i in idx:
            step_size, bc2_sqrt = _bias_corrections(state_steps[i], lrs[i], beta1, beta2)
            neg_step_sizes[i] = -step_size
            bc2_sqrts.append(bc2_sqrt)
        if group_exp_avg_sqs[0].dtype == _compute_dtype(group_exp_avg_sqs[0]):
            group_denoms = torch._foreach_sqrt(group_exp_avg_sqs)
        else:
            group_denoms = _foreach_upcast(group_exp_avg_sqs)
            torch._foreach_sqrt_(group_denoms)
        torch._foreach_div_(group_denoms, bc2_sqrts)
        torch._foreach_add_(group_denoms, eps)
        for i, d in zip(idx, group_denoms):
            denoms[i] = d
        adam = [i for i in idx if lams[i] == 0]
        if adam:
            thetas = _foreach_upcast([params[i] for i in adam])
            torch._foreach_addcdiv_(thetas, _foreach_upcast([exp_avgs[i] for i in adam]),
                                    [denoms[i] for i in adam], [neg_step_sizes[i] for i in adam])
            _foreach_write_back([params[i] for i in adam], thetas)
            for i in adam:
                denoms[i] = None

    projected = [i for i in range(n) if lams[i] != 0]
    if not projected:
        return
    row_of = {i: r for r, i in enumerate(projected)}
    rows: list[Tensor | None] = [None] * len(projected)
    chunks = [chunk for idx in groups.values() for chunk in _chunks([i for i in idx if lams[i] != 0], params)]
    for chunk in chunks:
        thetas = _foreach_upcast([params[i] for i in chunk])
        if anchors[chunk[0]] is None:
            displacements = [t.clone() for t in thetas]
        else:
            displacements = torch._foreach_sub(thetas, [_anchor_like(anchors[i], t) for i, t in zip(chunk, thetas)])
        upcast_grads = _foreach_upcast([grads[i] for i in chunk])
        dots = [torch.dot(g.reshape(-1), d.reshape(-1)) for g, d in zip(upcast_grads, displacements)]
        before = torch._foreach_norm(displacements)
        torch._foreach_addcdiv_(displacements, _foreach_upcast([exp_avgs[i] for i in chunk]),
                                [denoms[i] for i in chunk], [neg_step_sizes[i] for i in chunk])
        after = torch._foreach_norm(displacements)
        for i, row in zip(chunk, _partial_rows(dots, before, after).unbind(0)):
            rows[row_of[i]] = row
        del displacements, upcast_grads

    weights = _decay_weights(_stack_rows(rows), [lams[i] for i in projected], [max_decays[i] for i in projected],
                             reduce_partials)
    by_dtype: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for chunk in chunks:
        thetas = _foreach_upcast([params[i] for i in chunk])
        key = (thetas[0].device, thetas[0].dtype)
        if key not in by_dtype:
            by_dtype[key] = list(weights.to(device=key[0], dtype=key[1], non_blocking=True).unbind(0))
        chunk_weights = [by_dtype[key][row_of[i]] for i in chunk]
        torch._foreach_addcdiv_(thetas, _foreach_upcast([exp_avgs[i] for i in chunk]), [denoms[i] for i in chunk],
                                [neg_step_sizes[i] for i in chunk])
        if anchors[chunk[0]] is None:
            torch._foreach_mul_(thetas, [1 - w for w in chunk_weights])
        else:
            torch._foreach_lerp_(thetas, [_anchor_like(anchors[i], t) for i, t in zip(chunk, thetas)],
                                 chunk_weights)
        _foreach_write_back([params[i] for i in chunk], thetas)


def _foreach_upcast(tensors: list[Tensor]) -> list[Tensor]:
    """The tensors in their compute dtype (themselves for float32/float64, float32 copies otherwise)."""
    return [_upcast(t) for t in tensors]


def _foreach_write_back(params: list[Tensor], thetas: list[Tensor]) -> None:
    pairs = [(p, t) for p, t in zip(params, thetas) if t is not p]
    if pairs:
        torch._foreach_copy_([p for p, _ in pairs], [t for _, t in pairs])


def _chunks(indices: list[int], params: list[Tensor]) -> list[list[int]]:
    """Splits consecutive indices into runs of at most ``_CHUNK_NUMEL`` elements (a larger tensor runs alone)."""
    chunks: list[list[int]] = []
    size = 0
    for i in indices:
        numel = params[i].numel()
        if not chunks or size + numel > _CHUNK_NUMEL:
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += numel
    return chunks


def _fused_spd_adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    anchors: list[Tensor | None],
    state_steps: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    lrs: list[float],
    eps: float,
    lams: list[float],
    max_decays: list[float],
    reduce_partials: _PartialReducer | None,
    group_buffers: dict[Any, _TensorGroup] | None = None,
) -> None:
    if not params:
        return
    compiled = _compiled_kernels()
    n = len(params)
    # One op for all step counters and one read of them, instead of an add and an .item() per tensor.
    torch._foreach_add_(state_steps, 1)
    steps = torch.stack(state_steps).tolist()
    step_sizes, bc2_sqrts = map(list, zip(*(_corrections(steps[i], lrs[i], beta1, beta2) for i in range(n))))
    groups, singles = _tensor_groups(params, grads, exp_avgs, exp_avg_sqs, anchors, lams, group_buffers)
    lists, singles = _equal_size_lists(singles, params, grads, exp_avgs, exp_avg_sqs, anchors, lams)
    rows: list[Tensor | None] = [None] * n
    flat: dict[int, tuple[Tensor, ...]] = {}  # 1-D aliases of the listed tensors' p, g, m, v (and anchor)
    for idx in lists:
        for i in idx:
            flat[i] = tuple(_flat_alias(t) for t in (params[i], grads[i], exp_avgs[i], exp_avg_sqs[i]))
            if anchors[i] is not None:
                flat[i] += (_flat_alias(anchors[i]),)
        p, g, m, v = ([flat[i][k] for i in idx] for k in range(4))
        dtype, device = _compute_dtype(params[idx[0]]), params[idx[0]].device
        sizes = _column([step_sizes[i] for i in idx], device, dtype)
        bc2s = _column([bc2_sqrts[i] for i in idx], device, dtype)
        if lams[idx[0]] == 0:
            compiled.list_adam(p, g, m, v, beta1, beta2, sizes, bc2s, eps)
            continue
        if anchors[idx[0]] is None:
            list_rows = compiled.list_partials_zero(p, g, m, v, beta1, beta2, sizes, bc2s, eps)
        else:
            list_rows = compiled.list_partials(p, g, m, v, [flat[i][4] for i in idx], beta1, beta2, sizes, bc2s,
                                               eps)
        for i, row in zip(idx, list_rows.unbind(0)):
            rows[i] = row
    for i in singles:
        kernels = _kernels_for(params[i], compiled)
        p, g, m, v = _flat(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i])
        if lams[i] == 0:
            kernels.adam(p, g, m, v, beta1, beta2, step_sizes[i], bc2_sqrts[i], eps)
        elif anchors[i] is None:
            rows[i] = kernels.partials_zero(p, g, m, v, beta1, beta2, step_sizes[i], bc2_sqrts[i], eps)
        else:
            a = _flat_anchor(anchors[i], params[i])
            rows[i] = kernels.partials(p, g, m, v, a, beta1, beta2, step_sizes[i], bc2_sqrts[i], eps)
    for group in groups:
        group.gather(params, grads, exp_avgs, exp_avg_sqs, anchors, step_sizes, bc2_sqrts)
        if not group.projects:
            compiled.group_adam(group.p, group.g, group.m, group.v, beta1, beta2, group.step_sizes,
                                group.bc2_sqrts, eps)
            group.scatter(params, exp_avgs, exp_avg_sqs, moments=True, param=True)
            continue
        if group.a is None:
            group_rows = compiled.group_partials_zero(group.p, group.g, group.m, group.v, beta1, beta2,
                                                      group.step_sizes, group.bc2_sqrts, eps)
        else:
            group_rows = compiled.group_partials(group.p, group.g, group.m, group.v, group.a, beta1, beta2,
                                                 group.step_sizes, group.bc2_sqrts, eps)
        group.scatter(params, exp_avgs, exp_avg_sqs, moments=True, param=False)
        for i, row in zip(group.indices, group_rows.unbind(0)):
            rows[i] = row
    projected = [i for i in range(n) if lams[i] != 0]
    if not projected:
        return
    weights = _decay_weights(_stack_rows([rows[i] for i in projected]), [lams[i] for i in projected],
                             [max_decays[i] for i in projected], reduce_partials)
    position = {i: r for r, i in enumerate(projected)}
    by_dtype: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def weights_for(t: Tensor) -> Tensor:
        key = (t.device, _compute_dtype(t))
        if key not in by_dtype:
            by_dtype[key] = weights.to(device=key[0], dtype=key[1], non_blocking=True)
        return by_dtype[key]

    for i in singles:
        if lams[i] == 0:
            continue
        param = params[i]
        kernels = _kernels_for(param, compiled)
        p, _, m, v = _flat(param, grads[i], exp_avgs[i], exp_avg_sqs[i])
        weight = weights_for(param)[position[i]]
        if anchors[i] is None:
            kernels.project_zero(p, m, v, weight, step_sizes[i], bc2_sqrts[i], eps)
        else:
            kernels.project(p, m, v, _flat_anchor(anchors[i], param), weight, step_sizes[i], bc2_sqrts[i], eps)
    for idx in lists:
        if lams[idx[0]] == 0:
            continue
        first = params[idx[0]]
        rows_of = _column([position[i] for i in idx], weights.device, torch.long)
        column = weights_for(first).index_select(0, rows_of.to(first.device, non_blocking=True))
        dtype = _compute_dtype(first)
        sizes = _column([step_sizes[i] for i in idx], first.device, dtype)
        bc2s = _column([bc2_sqrts[i] for i in idx], first.device, dtype)
        p, m, v = ([flat[i][k] for i in idx] for k in (0, 2, 3))
        if anchors[idx[0]] is None:
            compiled.list_project_zero(p, m, v, column, sizes, bc2s, eps)
        else:
            compiled.list_project(p, m, v, [flat[i][4] for i in idx], column, sizes, bc2s, eps)
    for group in groups:
        if not group.projects:
            continue
        rows_of = _column([position[i] for i in group.indices], weights.device, torch.long)
        column = weights_for(group.p).index_select(0, rows_of.to(group.p.device, non_blocking=True)).unsqueeze(1)
        if group.a is None:
            compiled.group_project_zero(group.p, group.m, group.v, column, group.step_sizes, group.bc2_sqrts, eps)
        else:
            compiled.group_project(group.p, group.m, group.v, group.a, column, group.step_sizes, group.bc2_sqrts,
                                   eps)
        group.scatter(params, exp_avgs, exp_avg_sqs, moments=False, param=True)


class _TensorGroup:
    """Small tensors that the fused path steps together: each is one zero-padded row of (K, L) buffers.

    One compiled kernel then serves K tensors (its sums run along the rows, so each tensor keeps its own decision),
    at the cost of copying the tensors in and out, which is negligible for tensors of at most ``_GROUP_NUMEL``
    elements. The buffers and their per-tensor row views are made once and kept in ``group_buffers`` when the
    caller gives one (SPDAdam does), so a step adds no per-tensor host work beyond building the lists. Padding is
    inert: zero parameter, gradient, first moment and anchor with ``v = 1`` (refilled every step, since the moment
    update decays it) give a zero candidate and zero sums for any eps >= 0.
    """

    def __init__(self, indices: list[int], template: list[Tensor], length: int, projects: bool) -> None:
        """``template``: parameter, grad, exp_avg, exp_avg_sq and anchor (or None) of the first tensor; row views
        are shaped like ``shapes``."""
        self.indices, self.length, self.projects = indices, length, projects
        self.shapes: list[torch.Size] = []
        shape = (len(indices), length)
        p, g, m, v, a = template
        self.p, self.g, self.m = p.new_zeros(shape), g.new_zeros(shape), m.new_zeros(shape)
        self.v = v.new_ones(shape)
        self.a = None if a is None else a.new_zeros(shape)
        self.step_sizes: Tensor | None = None
        self.bc2_sqrts: Tensor | None = None
        self._views: dict[str, list[Tensor]] = {}

    def bind(self, shapes: list[torch.Size]) -> None:
        self.shapes = shapes
        self._views = {name: [buffer[r, :math.prod(s)].view(s) for r, s in enumerate(shapes)]
                       for name, buffer in (('p', self.p), ('g', self.g), ('m', self.m), ('v', self.v),
                                            ('a', self.a)) if buffer is not None}

    def gather(self, params, grads, exp_avgs, exp_avg_sqs, anchors, step_sizes, bc2_sqrts) -> None:
        self.v.fill_(1.0)
        sources = {'p': params, 'g': grads, 'm': exp_avgs, 'v': exp_avg_sqs, 'a': anchors}
        for name, views in self._views.items():
            torch._foreach_copy_(views, [sources[name][i] for i in self.indices])
        dtype, device = _compute_dtype(self.p), self.p.device
        self.step_sizes = _column([step_sizes[i] for i in self.indices], device, dtype).unsqueeze(1)
        self.bc2_sqrts = _column([bc2_sqrts[i] for i in self.indices], device, dtype).unsqueeze(1)

    def scatter(self, params, exp_avgs, exp_avg_sqs, *, moments: bool, param: bool) -> None:
        pairs = ([(exp_avgs, 'm'), (exp_avg_sqs, 'v')] if moments else []) + ([(params, 'p')] if param else [])
        for tensors, name in pairs:
            torch._foreach_copy_([tensors[i] for i in self.indices], self._views[name])


def _tensor_groups(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                   anchors: list[Tensor | None], lams: list[float],
                   group_buffers: dict[Any, _TensorGroup] | None = None) -> tuple[list[_TensorGroup], list[int]]:
    """Splits the tensors into groups of small ones that step together and the rest (``singles``, in order).

    A group shares the device, the dtypes of every operand, whether it projects (λ ≠ 0) and whether it has an
    anchor, and a row length (the next power of two of its tensors' sizes, at least 2 so that no compiled size is
    specialised); it holds at least two tensors and at most ``_GROUP_BUFFER_NUMEL`` buffer elements. Groups are
    taken from ``group_buffers`` when one with the same place in the plan and the same shapes is there, and stored
    in it otherwise.
    """
    keyed: dict[tuple[Any, ...], list[int]] = {}
    singles: list[int] = []
    for i, p in enumerate(params):
        anchor, numel = anchors[i], p.numel()
        if (not 0 < numel <= _GROUP_NUMEL or not all(t.is_contiguous() for t in (p, grads[i], exp_avgs[i],
                                                                                exp_avg_sqs[i]))
                or (anchor is not None and (anchor.device != p.device or not anchor.is_contiguous()))):
            singles.append(i)
            continue
        length = max(2, 1 << (numel - 1).bit_length())
        key = (p.device, p.dtype, grads[i].dtype, exp_avgs[i].dtype, exp_avg_sqs[i].dtype,
               None if anchor is None else anchor.dtype, lams[i] != 0, length)
        keyed.setdefault(key, []).append(i)
    groups: list[_TensorGroup] = []
    used: set[Any] = set()
    for key, indices in keyed.items():
        length, rows = key[-1], max(2, _GROUP_BUFFER_NUMEL // key[-1])
        for start in range(0, len(indices), rows):
            chunk = indices[start:start + rows]
            if len(chunk) < 2:
                singles.extend(chunk)
                continue
            shapes = [params[i].shape for i in chunk]
            cache_key = (len(groups), key, tuple(shapes))
            group = group_buffers.get(cache_key) if group_buffers is not None else None
            if group is None:
                i = chunk[0]
                group = _TensorGroup(chunk, [params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], anchors[i]], length,
                                     projects=key[6])
                group.bind(shapes)
                if group_buffers is not None:
                    group_buffers[cache_key] = group
            group.indices = chunk
            groups.append(group)
            used.add(cache_key)
    if group_buffers is not None:
        for stale in set(group_buffers) - used:  # e.g. a step where some parameters had no gradient
            del group_buffers[stale]
    singles.sort()
    return groups, singles


def _equal_size_lists(singles: list[int], params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor],
                      exp_avg_sqs: list[Tensor], anchors: list[Tensor | None],
                      lams: list[float]) -> tuple[list[list[int]], list[int]]:
    """Splits ``singles`` into lists of ``_LIST_SIZE`` tensors that share the number of elements, the device, the
    dtypes of every operand, whether they project and whether they have an anchor (on their device), and the rest."""
    if _LIST_SIZE < 2:
        return [], singles
    keyed: dict[tuple[Any, ...], list[int]] = {}
    rest: list[int] = []
    for i in singles:
        p, anchor = params[i], anchors[i]
        if (p.numel() <= 1 or not all(t.is_contiguous() for t in (p, grads[i], exp_avgs[i], exp_avg_sqs[i]))
                or (anchor is not None and (anchor.device != p.device or not anchor.is_contiguous()))):
            rest.append(i)
            continue
        key = (p.numel(), p.device, p.dtype, grads[i].dtype, exp_avgs[i].dtype, exp_avg_sqs[i].dtype,
               None if anchor is None else anchor.dtype, lams[i] != 0)
        keyed.setdefault(key, []).append(i)
    lists = []
    for indices in keyed.values():
        whole = len(indices) - len(indices) % _LIST_SIZE
        lists += [indices[k:k + _LIST_SIZE] for k in range(0, whole, _LIST_SIZE)]
        rest += indices[whole:]
    return lists, sorted(rest)


def _kernels_for(param: Tensor, compiled: _Kernels) -> _Kernels:
    # Tensors of 0 or 1 elements (empty shards, scalar gains) run the same math eagerly: compiling them would add
    # size-specialised graphs, and marking sizes unbacked instead makes inductor's kernels ~10x slower.
    return compiled if param.numel() > 1 else _EAGER_KERNELS


def _flat(param: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """1-D aliases of ``param`` and its grad/moments, so one compilation serves every shape; kept as they are when
    ``param`` is not contiguous (the moments share its strides)."""
    if not param.is_contiguous():
        return (param, *others)
    return tuple(_flat_alias(t.contiguous()) for t in (param, *others))


def _flat_anchor(anchor: Tensor, param: Tensor) -> Tensor:
    """The anchor on the parameter's device (in its own dtype; the kernels cast it), shaped like ``_flat(param)``."""
    anchor = anchor.to(param.device, non_blocking=True)
    return _flat_alias(anchor.contiguous()) if param.is_contiguous() else anchor


def _flat_alias(t: Tensor) -> Tensor:
    # Not a view (no ._base), so dynamo guards neither the rank nor the base of the original tensor.
    return t.new_empty(0).set_(t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,))


def _candidate(param: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step_size: float, bc2_sqrt: float,
               eps: float) -> Tensor:
    dtype = torch.promote_types(param.dtype, torch.float32)
    denom = exp_avg_sq.to(dtype).sqrt() / bc2_sqrt + eps
    return param.to(dtype) - step_size * exp_avg.to(dtype) / denom


def _moments_(grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float, beta2: float) -> None:
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).add_(grad * grad * (1 - beta2))


def _fused_adam(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float, beta2: float,
                step_size: float, bc2_sqrt: float, eps: float) -> None:
    _moments_(grad, exp_avg, exp_avg_sq, beta1, beta2)
    param.copy_(_candidate(param, exp_avg, exp_avg_sq, step_size, bc2_sqrt, eps))


def _fused_partials(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, anchor: Tensor | None,
                    beta1: float, beta2: float, step_size: float, bc2_sqrt: float, eps: float) -> Tensor:
    _moments_(grad, exp_avg, exp_avg_sq, beta1, beta2)
    dtype = torch.promote_types(param.dtype, torch.float32)
    before = param.to(dtype)
    after = _candidate(param, exp_avg, exp_avg_sq, step_size, bc2_sqrt, eps)
    if anchor is not None:
        before, after = before - anchor.to(dtype), after - anchor.to(dtype)
    # Sums along the last dimension: the whole tensor for the 1-D aliases, one row each for a group's (K, L) buffer.
    sums = [(grad.to(dtype) * before).sum(-1), (before * before).sum(-1), (after * after).sum(-1)]
    return torch.stack(sums, -1).to(torch.float64)


def _fused_partials_zero(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, beta1: float,
                         beta2: float, step_size: float, bc2_sqrt: float, eps: float) -> Tensor:
    return _fused_partials(param, grad, exp_avg, exp_avg_sq, None, beta1, beta2, step_size, bc2_sqrt, eps)


def _fused_project(param: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, anchor: Tensor, weight: Tensor,
                   step_size: float, bc2_sqrt: float, eps: float) -> None:
    theta = _candidate(param, exp_avg, exp_avg_sq, step_size, bc2_sqrt, eps)
    param.copy_(torch.lerp(theta, anchor.to(theta.dtype), weight))


def _fused_project_zero(param: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, weight: Tensor, step_size: float,
                        bc2_sqrt: float, eps: float) -> None:
    theta = _candidate(param, exp_avg, exp_avg_sq, step_size, bc2_sqrt, eps)
    param.copy_(theta * (1 - weight))


# The same math on a group's (K, L) buffers, with per-row step sizes, bias corrections and weights as (K, 1)
# columns. Separate functions, so that dynamo counts their compilations apart from the per-tensor ones.


def _group_adam(*args: Any) -> None:
    _fused_adam(*args)


def _group_partials(*args: Any) -> Tensor:
    return _fused_partials(*args)


def _group_partials_zero(*args: Any) -> Tensor:
    return _fused_partials_zero(*args)


def _group_project(*args: Any) -> None:
    _fused_project(*args)


def _group_project_zero(*args: Any) -> None:
    _fused_project_zero(*args)


# The per-tensor math on lists of equal-size 1-D tensors, with step sizes, bias corrections and weights as (K,)
# tensors; one compilation per dtype combination serves every size, since the list length is fixed.


def _list_adam(ps: list[Tensor], gs: list[Tensor], ms: list[Tensor], vs: list[Tensor], beta1: float, beta2: float,
               step_sizes: Tensor, bc2_sqrts: Tensor, eps: float) -> None:
    for k in range(len(ps)):
        _fused_adam(ps[k], gs[k], ms[k], vs[k], beta1, beta2, step_sizes[k], bc2_sqrts[k], eps)


def _list_partials(ps: list[Tensor], gs: list[Tensor], ms: list[Tensor], vs: list[Tensor], anchors: list[Tensor],
                   beta1: float, beta2: float, step_sizes: Tensor, bc2_sqrts: Tensor, eps: float) -> Tensor:
    return torch.stack([_fused_partials(ps[k], gs[k], ms[k], vs[k], anchors[k], beta1, beta2, step_sizes[k],
                                        bc2_sqrts[k], eps) for k in range(len(ps))])


def _list_partials_zero(ps: list[Tensor], gs: list[Tensor], ms: list[Tensor], vs: list[Tensor], beta1: float,
                        beta2: float, step_sizes: Tensor, bc2_sqrts: Tensor, eps: float) -> Tensor:
    return torch.stack([_fused_partials(ps[k], gs[k], ms[k], vs[k], None, beta1, beta2, step_sizes[k],
                                        bc2_sqrts[k], eps) for k in range(len(ps))])


def _list_project(ps: list[Tensor], ms: list[Tensor], vs: list[Tensor], anchors: list[Tensor], weights: Tensor,
                  step_sizes: Tensor, bc2_sqrts: Tensor, eps: float) -> None:
    for k in range(len(ps)):
        _fused_project(ps[k], ms[k], vs[k], anchors[k], weights[k], step_sizes[k], bc2_sqrts[k], eps)


def _list_project_zero(ps: list[Tensor], ms: list[Tensor], vs: list[Tensor], weights: Tensor, step_sizes: Tensor,
                       bc2_sqrts: Tensor, eps: float) -> None:
    for k in range(len(ps)):
        _fused_project_zero(ps[k], ms[k], vs[k], weights[k], step_sizes[k], bc2_sqrts[k], eps)


@dataclass(frozen=True)
class _Kernels:
    adam: Callable[..., None]
    partials: Callable[..., Tensor]
    partials_zero: Callable[..., Tensor]
    project: Callable[..., None]
    project_zero: Callable[..., None]
    group_adam: Callable[..., None]
    group_partials: Callable[..., Tensor]
    group_partials_zero: Callable[..., Tensor]
    group_project: Callable[..., None]
    group_project_zero: Callable[..., None]
    list_adam: Callable[..., None]
    list_partials: Callable[..., Tensor]
    list_partials_zero: Callable[..., Tensor]
    list_project: Callable[..., None]
    list_project_zero: Callable[..., None]


_KERNEL_FUNCTIONS = (_fused_adam, _fused_partials, _fused_partials_zero, _fused_project, _fused_project_zero,
                     _group_adam, _group_partials, _group_partials_zero, _group_project, _group_project_zero,
                     _list_adam, _list_partials, _list_partials_zero, _list_project, _list_project_zero)
_EAGER_KERNELS = _Kernels(*_KERNEL_FUNCTIONS)


@functools.cache
def _compiled_kernels() -> _Kernels:
    """The fused kernels, compiled on first call with dynamic shapes: one compilation per dtype combination.

    Zero-anchor variants are separate functions so that each compiled function sees few variants and stays under
    dynamo's recompile limit.
    """
    try:
        compile_ = functools.partial(torch.compile, dynamic=True, fullgraph=True)
        return _Kernels(*(compile_(fn) for fn in _KERNEL_FUNCTIONS))
    except Exception as error:  # torch.compile raises backend-specific types
        raise RuntimeError(f'fused=True needs torch.compile, which failed here: {error}; '
                           'use foreach=True instead') from error


# ------------------------------------------------------------------------------------------------ distributed


def _is_dtensor(t: Any) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def _local(t: Tensor | None) -> Tensor | None:
    return t.to_local() if _is_dtensor(t) else t


def _shard_groups(param: Tensor, anchor: Tensor | None) -> tuple[Any, ...]:
    """Process groups over which this tensor's partial sums must be added (empty for a whole tensor)."""
    if not _is_dtensor(param):
        return ()
    if anchor is not None and not _is_dtensor(anchor):
        raise TypeError('the anchor of a DTensor parameter must be a DTensor with the same placements')
    groups = []
    for dim, placement in enumerate(param.placements):
        if placement.is_partial():
            raise ValueError(f'SPDAdam cannot step a parameter with a Partial placement: {param.placements}')
        if placement.is_shard():
            groups.append(param.device_mesh.get_group(dim))
    return tuple(groups)


def _all_reduce_partials(partials: Tensor, groups: tuple[Any, ...]) -> None:
    for group in groups:
        dist.all_reduce(partials, op=dist.ReduceOp.SUM, group=group)


def _partial_reducer(keys: list[tuple[Any, ...]]) -> _PartialReducer | None:
    """A function that sums, in place, the partial rows of sharded tensors over their shard groups.

    ``keys[r]`` names the shard groups of row ``r``; rows of one key are contiguous (``spd_adam`` orders them so),
    hence one collective per distinct key, on a slice.
    """
    runs: list[tuple[int, int, tuple[Any, ...]]] = []
    for row, key in enumerate(keys):
        if not key:
            continue
        if runs and runs[-1][2] == key and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1, key)
        else:
            runs.append((row, row + 1, key))
    if not runs:
        return None

    def reduce_partials(partials: Tensor) -> None:
        for start, stop, key in runs:
            _all_reduce_partials(partials[start:stop], key)

    return reduce_partials


# ------------------------------------------------------------------------------------------------ construction


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _validated(h: dict[str, Any], where: str) -> dict[str, Any]:
    """Checks one set of hyperparameters and returns it normalised (anchor_device as str, betas as a tuple)."""
    if not _is_real(h['lr']) or h['lr'] < 0:
        raise ValueError(f"Invalid learning rate: {h['lr']!r}{where} (a float >= 0)")
    if not _is_real(h['eps']) or h['eps'] < 0:
        raise ValueError(f"Invalid epsilon value: {h['eps']!r}{where} (a float >= 0)")
    betas = h['betas']
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f'Invalid betas: {betas!r}{where} (a pair (beta1, beta2))')
    for i, beta in enumerate(betas):
        if not _is_real(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f'Invalid beta parameter at index {i}: {beta!r}{where} (in [0, 1))')
    if not _is_real(h['lam']) or h['lam'] < 0:
        raise ValueError(f"Invalid lam value: {h['lam']!r}{where} (a float >= 0)")
    if h['max_decay'] is not None and (not _is_real(h['max_decay']) or h['max_decay'] < 0):
        raise ValueError(f"Invalid max_decay value: {h['max_decay']!r}{where} (None or a float >= 0)")
    if h['anchor'] not in _ANCHOR_MODES:
        raise ValueError(f"Invalid anchor: {h['anchor']!r}{where} ('copy' or 'zero', or 'anchors' in a group)")
    device = h['anchor_device']
    if device is not None:
        try:
            device = str(torch.device(device))
        except (RuntimeError, TypeError) as error:
            raise ValueError(f'Invalid anchor_device: {device!r}{where} ({error})') from None
    dtype = h['anchor_dtype']
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f'Invalid anchor_dtype: {dtype!r}{where} (None or a floating-point torch.dtype)')
    for flag in ('foreach', 'fused'):
        if h[flag] not in (None, True, False):
            raise TypeError(f'Invalid {flag}: {h[flag]!r}{where} (None, True or False)')
    if h['fused'] and h['foreach']:
        raise RuntimeError(f'`fused` and `foreach` cannot be `True` together{where}.')
    return {**h, 'betas': (float(betas[0]), float(betas[1])), 'anchor_device': device}


def _check_fused_support(params: list[Tensor]) -> None:
    for p in params:
        local = _local(p)
        if not (local.is_floating_point() and local.device.type in _FUSED_DEVICES):
            raise RuntimeError(f'`fused=True` requires floating-point tensors on {list(_FUSED_DEVICES)}, '
                               f'got {local.dtype} on {local.device.type}')


def _check_explicit_anchors(params: list[Tensor], anchors: list[Any], where: str) -> None:
    if len(anchors) != len(params):
        raise ValueError(f"'anchors' has {len(anchors)} entries but 'params' has {len(params)}{where}")
    for i, (p, a) in enumerate(zip(params, anchors)):
        if not isinstance(a, Tensor):
            raise TypeError(f'anchors[{i}] must be a Tensor, got {type(a).__name__}{where}')
        if tuple(a.shape) != tuple(p.shape):
            raise ValueError(f'anchors[{i}] has shape {tuple(a.shape)} but its parameter has shape '
                             f'{tuple(p.shape)}{where}')
        if _is_dtensor(p) and (not _is_dtensor(a) or a.placements != p.placements):
            raise TypeError(f'anchors[{i}] must be a DTensor with placements {p.placements} like its parameter'
                            f'{where} (e.g. p.detach().clone())')
        if not a.is_floating_point():
            raise TypeError(f'anchors[{i}] must be floating point, got {a.dtype}{where}')


def _make_anchor(param: Tensor, source: Tensor, device: str | None, dtype: torch.dtype | None,
                 copy: bool) -> Tensor:
    """θ₀ for ``param`` from ``source``, on ``device``/``dtype`` (default: the parameter's), never aliasing it."""
    if _is_dtensor(param):
        local = _place(source.to_local(), param.to_local(), device, dtype, copy)
        return DTensor.from_local(local, param.device_mesh, param.placements, run_check=False,
                                  shape=param.shape, stride=param.stride())
    return _place(source, param, device, dtype, copy)


def _place(source: Tensor, param: Tensor, device: str | None, dtype: torch.dtype | None, copy: bool) -> Tensor:
    target = torch.device(device) if device is not None else param.device
    anchor = source.detach().to(device=target, dtype=dtype or param.dtype, copy=copy)
    if anchor.numel() and anchor.untyped_storage().data_ptr() == param.untyped_storage().data_ptr():
        anchor = anchor.clone()  # an anchor that shares memory with its parameter would move with it
    if anchor.device.type == 'cpu' and param.device.type == 'cuda':
        anchor = anchor.pin_memory()  # lets the per-step transfers run asynchronously
    return anchor


def _per_tensor(value: Any, n: int, name: str) -> list[Any]:
    if value is None or isinstance(value, numbers.Real):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f'{name} has {len(values)} entries but params has {n}')
    return values
