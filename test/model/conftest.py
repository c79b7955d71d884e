"""Fixtures for maps_vla.model tests: tiny configs and deterministic batches."""

import dataclasses

import numpy as np
import pytest
import torch

from maps_vla.model import make_policy, make_policy_config
from maps_vla.model.vla.configuration_vla import ActionHeadConfig, LLMConfig
from maps_vla.model.vla.processor_vla import NormStats


def tiny_config(head: str = 'l1_regression', views: int = 2, proprio: int = 8, dual: bool = False,
                llama: bool = False, **head_kwargs):
    """The 'tiny' preset varied along the axes the tests cover."""
    cfg = make_policy_config('tiny')
    vision = dataclasses.replace(cfg.vision, dual_encoder=dual)
    llm = cfg.llm
    if llama:
        llm = LLMConfig(arch='llama', vocab_size=384, hidden_size=64, intermediate_size=128, num_layers=2,
                        num_heads=4, num_kv_heads=4, rope_theta=10000.0, max_position_embeddings=1024,
                        tie_word_embeddings=False)
    return cfg.replace(vision=vision, llm=llm, head=ActionHeadConfig(type=head, **head_kwargs),
                       cameras=('third_person', 'wrist')[:views], proprio_dim=proprio)


def stats_for(cfg) -> NormStats:
    rng = np.random.default_rng(0)
    low = rng.uniform(-2, -0.5, cfg.action_dim)
    mask = [True] * (cfg.action_dim - 1) + [False]
    state_low = rng.uniform(-1, 0, cfg.proprio_dim)
    return NormStats(low, low + rng.uniform(0.5, 3, cfg.action_dim), mask, state_low, state_low + 1.5)


def build(cfg, seed: int = 0):
    torch.manual_seed(seed)
    return make_policy(cfg, norm_stats=stats_for(cfg))


def robot_batch(cfg, batch_size: int = 2, seed: int = 0, image_hw=(32, 40)):
    """Images of another size than the model's (exercises resizing), prompts of different lengths, padding."""
    g = torch.Generator().manual_seed(seed)
    tasks = ['pick up the red cup', 'open the top drawer of the cabinet', 'push the button', 'stack blocks']
    mask = torch.ones(batch_size, cfg.chunk_size, dtype=torch.bool)
    mask[-1, cfg.chunk_size - 3:] = False
    batch = {
        'images': torch.randint(0, 256, (batch_size, cfg.num_views, 3, *image_hw), generator=g, dtype=torch.uint8),
        'task': [tasks[i % len(tasks)] for i in range(batch_size)],
        'actions': torch.rand(batch_size, cfg.chunk_size, cfg.action_dim, generator=g) * 2 - 1,
        'action_mask': mask,
    }
    if cfg.proprio_dim:
        batch['state'] = torch.rand(batch_size, cfg.proprio_dim, generator=g) * 2 - 1
    return batch


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every model test runs single-threaded (test/conftest.py's `one_thread`)."""


@pytest.fixture
def make_tiny():
    return tiny_config


@pytest.fixture
def make_batch():
    return robot_batch


@pytest.fixture
def build_policy():
    return build
