"""maps_vla.demo: the one-command sim demo of the whole loop (`maps-vla demo`).

    result = run_demo(demo_config('smallest', out='outputs/demo'))
    print(result.summary)
"""

from maps_vla.demo.configuration_demo import DEMO_SIZES, DemoConfig, demo_config
from maps_vla.demo.pipeline import DemoResult, run_demo

__all__ = ['DemoConfig', 'DEMO_SIZES', 'demo_config', 'DemoResult', 'run_demo']
