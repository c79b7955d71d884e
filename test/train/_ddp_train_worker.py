"""Rank worker for test_trainer_ddp.py (a plain module on sys.path, so spawned ranks can import it by name)."""

import dataclasses
import os

from maps_vla.config import load_config
from maps_vla.train.configuration_train import TrainConfig
from maps_vla.train.trainer import train


def worker(rank: int, port: int, world: int, config_path: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      ACCELERATE_USE_CPU='true')  # what `accelerate launch --cpu` sets: DDP over gloo
    cfg = load_config(TrainConfig, config_path)
    train(dataclasses.replace(cfg, batch_size=cfg.batch_size // world))
