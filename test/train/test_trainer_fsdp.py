"""`train` under FSDP2 on 2 CPU ranks (gloo, through accelerate's FSDP2 code) against DDP, export and resume."""

import dataclasses
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from maps_vla.config import save_config
from maps_vla.data.dataset import Dataset
from maps_vla.maps.factory import FinetuneMethodConfig, prepare_model
from maps_vla.train.augment import AugmentConfig
from maps_vla.train.configuration_train import DataConfig, FSDPConfig, TrainConfig
from maps_vla.train.trainer import build_policy, train

sys.path.insert(0, str(Path(__file__).parent))
import _fsdp_train_worker as workers  # noqa: E402


def test_fsdp_config_is_validated():
    with pytest.raises(ValueError, match='auto_wrap_policy'):
        FSDPConfig(auto_wrap_policy='transformer')
    with pytest.raises(ValueError, match='auto_wrap_policy'):
        FSDPConfig(auto_wrap_policy='size_based_wrap')
    with pytest.raises(ValueError, match="fsdp.enabled does not support method 'l2sp'"):
        TrainConfig(fsdp=FSDPConfig(enabled=True), method=FinetuneMethodConfig(method='l2sp'))
    assert FSDPConfig(transformer_cls_names_to_wrap=['Qwen2DecoderLayer']).transformer_cls_names_to_wrap == (
        'Qwen2DecoderLayer',)


def test_fsdp_on_cpu_raises_instead_of_running_ddp(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv('ACCELERATE_USE_FSDP', raising=False)
    cfg = TrainConfig(data=DataConfig(root=str(tiny_dataset)), out_dir=str(tmp_path), steps=1, progress=False,
                      fsdp=FSDPConfig(enabled=True))
    with pytest.raises(RuntimeError, match='accelerate chose NO on cpu'):
        train(cfg)
    assert 'ACCELERATE_USE_FSDP' not in os.environ  # the plugin's process-wide flag does not outlive the run


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason='needs gloo')
def test_fsdp2_matches_ddp_exports_and_resumes(tiny_dataset, tmp_path):
    """MAPS under FSDP2 equals DDP to rounding, with sharded anchors; exports a policy that computes what the
    sharded model computes; resumes bit for bit (the worker checks the anchors, the export and the resume losses)."""
    cfg = TrainConfig(data=DataConfig(root=str(tiny_dataset), augment=AugmentConfig(enabled=False)),
                      method=FinetuneMethodConfig(method='maps', lambda_max=2.0, lr=3e-4),
                      out_dir=str(tmp_path), steps=4, batch_size=4, grad_accum=2, save_every=2, grad_clip=1.0,
                      log_every=1, drift_every=1, progress=False)
    save_config(cfg, tmp_path / 'cfg.yaml')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(workers.worker, args=(port, 2, str(tmp_path / 'cfg.yaml')), nprocs=2, join=True)

    ddp = load_file(tmp_path / 'ddp' / 'policy' / 'model.safetensors')
    fsdp = load_file(tmp_path / 'fsdp' / 'policy' / 'model.safetensors')
    resumed = load_file(tmp_path / 'resumed' / 'policy' / 'model.safetensors')
    initial = build_policy(cfg.model, Dataset(tiny_dataset), cfg.seed).state_dict()
    assert ddp.keys() == fsdp.keys() == resumed.keys()
    for key in fsdp:  # resuming under FSDP2 continues bit for bit
        torch.testing.assert_close(resumed[key], fsdp[key], rtol=0, atol=0, msg=key)

    # FSDP2 and DDP average the same per-rank gradients (a sum of two halves, exact) and step the same Adam; only
    # SPD's per-tensor sums (gᵀ(θ−θ₀), ‖θ−θ₀‖², ‖θ̃−θ₀‖²) and the clipping norm add up shards in another order, a
    # few float32 ulps (measured max 6.1e-7). A real fault (a shard's gradient or projection missing) moves
    # elements by about lr = 3e-4 per step, so 1e-5 lies well between the two.
    gap = max(float((fsdp[k] - ddp[k]).abs().max()) for k in ddp)
    moved = max(float((fsdp[k] - initial[k]).abs().max()) for k in ddp)
    assert gap < 1e-5 < moved / 10, (gap, moved)

    # The LoRA run's export is its DCP training state (adapters unmerged, as saved) merged in one process.
    state = tmp_path / 'lora' / 'checkpoints' / 'step_0000001'
    dcp_to_torch_save(state / 'state' / 'pytorch_model_fsdp_0', tmp_path / 'lora.pt')
    lora_cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, lora=True, lora_rank=4))
    peft = prepare_model(lora_cfg.method, build_policy(cfg.model, Dataset(tiny_dataset), cfg.seed))
    peft.load_state_dict(torch.load(tmp_path / 'lora.pt')['model'], strict=True)
    merged = peft.merge_and_unload().state_dict()
    exported = load_file(state / 'policy' / 'model.safetensors')
    assert exported.keys() <= merged.keys()
    for key in exported:
        torch.testing.assert_close(exported[key], merged[key], rtol=0, atol=0, msg=key)
