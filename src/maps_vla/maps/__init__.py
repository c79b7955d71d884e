"""MAPS: module-wise proximity scheduling of SPD (selective projection decay) for VLA fine-tuning.

    groups = maps_param_groups(policy, lambda_max=1.5, schedule='linear')   # DINOv2 → SigLIP → projector → LLM
    print(lambda_table(groups))
    optimizer = SPDAdam(groups, lr=5e-5)

or, with the baselines behind one config: `make_optimizer(FinetuneMethodConfig(method='maps'), policy)`.
"""

from maps_vla.maps.drift import drift_report, drift_table, plot_drift
from maps_vla.maps.factory import FinetuneMethodConfig, make_optimizer, prepare_model
from maps_vla.maps.optimizer import SPDAdam, spd_adam
from maps_vla.maps.param_groups import lambda_table, maps_param_groups
from maps_vla.maps.schedules import SCHEDULES

__all__ = ['SPDAdam', 'spd_adam', 'maps_param_groups', 'lambda_table', 'SCHEDULES', 'FinetuneMethodConfig',
           'make_optimizer', 'prepare_model', 'drift_report', 'drift_table', 'plot_drift']
