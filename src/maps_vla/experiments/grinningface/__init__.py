"""The GrinningFace experiment (issues #7, #14): does MAPS keep pretrained vision-language knowledge that FFT destroys?

A prior that has seen all 24 emojis (a VLM pre-trained here on generated emoji Q&A, or the shipped pick_place
prior) is fine-tuned on scripted demos that show only the 16 train emojis, with FFT, LoRA, freezing, uniform SPD,
MAPS and co-training, and measured on the 8 held-out emojis: closed-loop execution and recognition, VL probes,
target choice and drift. `maps-vla experiment grinningface --config ...`.
"""

from maps_vla.experiments.grinningface.configuration import DEFAULT_METHODS, GrinningFaceConfig, MethodRun, ModelSizeConfig
from maps_vla.experiments.grinningface.pipeline import run_experiment

__all__ = ['GrinningFaceConfig', 'ModelSizeConfig', 'MethodRun', 'DEFAULT_METHODS', 'run_experiment']
