"""Action heads (registry `ACTION_HEADS`) and action tokenizers."""

from maps_vla.model.heads.action_expert import ActionExpertHead
from maps_vla.model.heads.base import ACTION_HEADS, ActionHead, RobotInputs, Sequence, VLABackbone
from maps_vla.model.heads.discrete_bins import BinActionTokenizer, DiscreteBinHead
from maps_vla.model.heads.l1_regression import L1RegressionHead, MLPResNet
from maps_vla.model.heads.string_actions import StringActionHead, StringActionTokenizer

__all__ = [
    'ACTION_HEADS', 'ActionExpertHead', 'ActionHead', 'RobotInputs', 'Sequence', 'VLABackbone', 'BinActionTokenizer',
    'DiscreteBinHead', 'L1RegressionHead', 'MLPResNet', 'StringActionHead', 'StringActionTokenizer'
]
