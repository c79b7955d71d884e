"""Fixtures for the MAPS tests: tiny toy VLAs built with a fixed seed."""

import pytest
import torch


@pytest.fixture
def make_toy():
    """Factory for a fresh, seeded ToyVLA (tiny transformers towers and LM)."""
    from maps_vla.maps.toy import ToyVLA, ToyVLAConfig

    def build(seed: int = 0, **overrides) -> torch.nn.Module:
        torch.manual_seed(seed)
        return ToyVLA(ToyVLAConfig(**overrides))

    return build
