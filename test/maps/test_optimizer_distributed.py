"""SPDAdam under DDP and FSDP2 (``fully_shard``) on 2 CPU ranks with gloo, against a single-process run."""

import socket
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

# Spawned ranks unpickle the worker by module name; the test package name clashes with the stdlib 'test', so the
# workers live in a plain module on sys.path (spawned children inherit the parent's sys.path).
sys.path.insert(0, str(Path(__file__).parent))
import _spd_dist_workers as workers  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='needs gloo'),
]


def _spawn(worker, *args):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, *args), nprocs=workers.WORLD, join=True)


def test_ddp_equals_single_process():
    # DDP hands the optimizer averaged whole tensors, so one kernel suffices here.
    _spawn(workers.ddp_worker, True)


@pytest.mark.parametrize('kernel', [{'foreach': False}, {'foreach': True}, {'fused': True}],
                         ids=['single', 'foreach', 'fused'])
def test_fsdp2_sharded_equals_single_process_and_needs_the_all_reduce(kernel):
    _spawn(workers.fsdp_worker, kernel)


def test_fsdp2_distributed_state_dict_resume():
    _spawn(workers.fsdp_resume_worker)
