"""maps_vla.data: LeRobot v2.1-compatible episode datasets (writer, reader, stats) and demo collection.

`maps_vla.data.torch_dataset.TorchDataset` (the torch adapter) is not imported here, so the rest stays torch-free.
"""

from maps_vla.data.collect import CollectResult, Expert, collect_episodes
from maps_vla.data.dataset import ACTION, ACTION_MASK, Dataset, EpisodeInfo
from maps_vla.data.video import VideoConfig, psnr
from maps_vla.data.writer import DatasetConfig, DatasetWriter

__all__ = ['ACTION', 'ACTION_MASK', 'CollectResult', 'Dataset', 'DatasetConfig', 'DatasetWriter', 'EpisodeInfo',
           'Expert', 'VideoConfig', 'collect_episodes', 'psnr']
