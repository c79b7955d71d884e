"""maps_vla.pretrain: build the small VLA prior that the demo and the GrinningFace experiment fine-tune."""

from maps_vla.pretrain.configuration_pretrain import PretrainConfig
from maps_vla.pretrain.pipeline import run_pretrain

__all__ = ['PretrainConfig', 'run_pretrain']
