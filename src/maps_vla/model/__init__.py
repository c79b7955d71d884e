"""maps_vla.model: the VLA policy, its action heads, checkpoints and importers."""

from maps_vla.model.factory import make_policy, make_policy_config
from maps_vla.model.vla import VLA_PRESETS, NormStats, VLAConfig, VLAPolicy

__all__ = ['make_policy', 'make_policy_config', 'VLAConfig', 'VLAPolicy', 'NormStats', 'VLA_PRESETS']
