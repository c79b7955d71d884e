"""`cpu_or_cuda`: the torch thread count and accelerate's device choice for one in-process job, restored after."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ['cpu_or_cuda']


@contextlib.contextmanager
def cpu_or_cuda(device: str, threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch CPU threads (None: unchanged) and accelerate kept on the CPU when
    `device` is 'cpu' although a GPU exists.

    Raises:
        RuntimeError: `device` is CUDA but torch sees no CUDA device.
    """
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r}: torch sees no CUDA device here; use cpu')
    saved_threads = torch.get_num_threads()
    saved_env = os.environ.get('ACCELERATE_USE_CPU')
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if device == 'cpu' and torch.cuda.is_available():
            os.environ['ACCELERATE_USE_CPU'] = 'true'
        yield
    finally:
        torch.set_num_threads(saved_threads)
        if saved_env is None:
            os.environ.pop('ACCELERATE_USE_CPU', None)
        else:
            os.environ['ACCELERATE_USE_CPU'] = saved_env
