"""The VLA policy folder: configuration, modeling and processor (LeRobot layout)."""

from maps_vla.model.vla.configuration_vla import (ActionHeadConfig, LLMConfig, VisionConfig, ViTConfig, VLAConfig,
                                                  VLA_PRESETS, register_auto_classes)
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import NormStats, VLAProcessor

register_auto_classes()  # transformers' AutoConfig / AutoModel open maps_vla checkpoints

__all__ = ['VLAConfig', 'VisionConfig', 'ViTConfig', 'LLMConfig', 'ActionHeadConfig', 'VLA_PRESETS', 'VLAPolicy',
           'NormStats', 'VLAProcessor']
