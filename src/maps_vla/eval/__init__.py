"""maps_vla.eval: rollouts of a policy in an env, ID/OOD success tables with Wilson intervals, plots, videos."""

from maps_vla.eval.evaluate import evaluate
from maps_vla.eval.policies import BoundExpertPolicy, ExpertPolicy, RandomPolicy, camera_side
from maps_vla.eval.report import EvalReport, Split, Summary, VariantResult
from maps_vla.eval.rollout import EpisodeResult, Outcome, rollout
from maps_vla.eval.wilson import difference_interval, wilson_interval

__all__ = ['BoundExpertPolicy', 'EpisodeResult', 'EvalReport', 'ExpertPolicy', 'Outcome', 'RandomPolicy', 'Split',
           'Summary', 'VariantResult', 'camera_side', 'difference_interval', 'evaluate', 'rollout', 'wilson_interval']
