"""The compute precision a run asks for (`TrainConfig.mixed_precision`), set explicitly and checked on the model.

accelerate applies mixed precision two ways: autocast around the forward (one process, DDP) and FSDP2's
`MixedPrecisionPolicy` (parameters gathered in the low precision). Its defaults have changed between releases
(1.15 cast FSDP2 forward outputs to bf16, 1.16 leaves them as computed), so the trainer sets the FSDP2 policy itself
and measures, on the first forward of a run, the dtype its linear layers actually compute in. A run whose
accelerator silently trains in another precision stops with an error instead of training in it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn
from torch.distributed.fsdp import MixedPrecisionPolicy

__all__ = ['COMPUTE_DTYPES', 'fsdp_mixed_precision_policy', 'ComputeDtypeProbe']

logger = logging.getLogger(__name__)

COMPUTE_DTYPES: dict[str, torch.dtype] = {'no': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def fsdp_mixed_precision_policy(mixed_precision: str) -> MixedPrecisionPolicy | None:
    """FSDP2's policy for `mixed_precision`: gathered parameters and the forward/backward in the low precision,
    gradients reduced in fp32 (bf16 sums across many ranks lose bits), outputs left as computed; the sharded master
    weights and the optimizer state stay fp32. None for 'no'."""
    if mixed_precision == 'no':
        return None
    return MixedPrecisionPolicy(param_dtype=COMPUTE_DTYPES[mixed_precision], reduce_dtype=torch.float32,
                                output_dtype=None, cast_forward_inputs=True)


class ComputeDtypeProbe:
    """Records the output dtype of every `nn.Linear` call during the forwards run inside `watch()`.

    Linear layers carry nearly all of a VLA's FLOPs, so their output dtype is the precision the model trains in:
    bf16 under autocast (matmuls are autocast to bf16) and under FSDP2's policy (bf16 weights), fp32 when neither
    was applied.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[torch.dtype] = collections.Counter()

    @contextlib.contextmanager
    def watch(self, model: nn.Module) -> Iterator[ComputeDtypeProbe]:
        def record(module: nn.Module, inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                self.counts[output.dtype] += 1

        handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Linear)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    @property
    def dominant(self) -> torch.dtype | None:
        """The dtype most linear calls computed in (None: no linear layer ran)."""
        return self.counts.most_common(1)[0][0] if self.counts else None

    def check(self, mixed_precision: str, context: str) -> torch.dtype:
        """The dominant compute dtype, which must be the one `mixed_precision` asks for.

        Args:
            mixed_precision: `TrainConfig.mixed_precision`.
            context: how the run was set up (accelerate's distributed type and version), for the error message.

        Raises:
            RuntimeError: the linear layers computed mostly in another dtype (the setting was not applied).
        """
        expected = COMPUTE_DTYPES[mixed_precision]
        dominant = self.dominant
        seen = ', '.join(f'{str(d).removeprefix("torch.")}: {n}' for d, n in self.counts.most_common())
        if dominant is None:
            raise RuntimeError('No linear layer ran in the first forward: the compute precision cannot be checked')
        if dominant != expected:
            raise RuntimeError(f'TrainConfig.mixed_precision={mixed_precision!r} asks for '
                               f'{str(expected).removeprefix("torch.")} compute, but the linear layers of the first '
                               f'forward computed in {seen} ({context}): the accelerator did not apply it')
        logger.info('compute precision %s checked on the first forward (linear calls by dtype: %s)',
                    str(dominant).removeprefix('torch.'), seen)
        return dominant
