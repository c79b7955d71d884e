"""The GrinningFace experiment (issue #7): does MAPS keep pretrained vision-language knowledge that FFT destroys?

A small VLM of our architecture is pre-trained on generated vision-language data about emoji cards (all 24
emojis), fine-tuned into a VLA on scripted demos that show only the 16 train emojis, with FFT, freezing, uniform
SPD and MAPS, and measured on the 8 held-out emojis. `maps-vla experiment grinningface --config ...`.
"""

from maps_vla.experiments.grinningface.configuration import DEFAULT_METHODS, GrinningFaceConfig, MethodRun, ModelSizeConfig
from maps_vla.experiments.grinningface.pipeline import run_experiment

__all__ = ['GrinningFaceConfig', 'ModelSizeConfig', 'MethodRun', 'DEFAULT_METHODS', 'run_experiment']
