"""maps_vla.model: the VLA policy, its action heads, checkpoints and importers."""

from maps_vla.model._requirements import check_transformers

check_transformers()

from maps_vla.model.factory import make_policy, make_policy_config  # noqa: E402  (after the version check)
from maps_vla.model.vla import VLA_PRESETS, NormStats, VLAConfig, VLAPolicy  # noqa: E402

__all__ = ['make_policy', 'make_policy_config', 'VLAConfig', 'VLAPolicy', 'NormStats', 'VLA_PRESETS']
