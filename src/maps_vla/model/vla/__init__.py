"""The VLA policy folder: configuration, modeling and processor (LeRobot layout)."""

from maps_vla.model.vla.configuration_vla import (ActionHeadConfig, LLMConfig, VisionConfig, ViTConfig, VLAConfig,
                                                  VLA_PRESETS)
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import NormStats, VLAProcessor

__all__ = ['VLAConfig', 'VisionConfig', 'ViTConfig', 'LLMConfig', 'ActionHeadConfig', 'VLA_PRESETS', 'VLAPolicy',
           'NormStats', 'VLAProcessor']
