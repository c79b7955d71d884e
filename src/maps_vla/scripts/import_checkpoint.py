"""`maps-vla import --format openvla-oft SRC --out DIR`: turn an OpenVLA-OFT or MiniVLA folder into ours."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']

_FORMATS = ('openvla-oft', 'minivla')
_DTYPES = ('float32', 'bfloat16', 'float16')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('source', help='the checkpoint folder (OpenVLA-OFT HF folder, or a Prismatic/MiniVLA run)')
    parser.add_argument('--format', required=True, choices=_FORMATS, help='layout of the source folder')
    parser.add_argument('--out', required=True, help='maps_vla checkpoint folder to write')
    parser.add_argument('--config', default=None,
                        help="our architecture: a preset ('openvla', 'minivla', 'tiny') or a VLAConfig YAML "
                             '(default: the preset named like the format)')
    parser.add_argument('--unnorm-key', default=None, help='dataset in dataset_statistics.json when it has several')
    parser.add_argument('--dtype', default=None, choices=_DTYPES, help='cast the weights (default: as stored)')
    parser.add_argument('--dual-encoder', action='store_true',
                        help='add a frozen copy of the vision encoder (arXiv 2509.11417), starting equal to it')


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    import torch

    from maps_vla.config import load_config
    from maps_vla.model.factory import make_policy_config
    from maps_vla.model.importers import import_minivla, import_openvla_oft
    from maps_vla.model.vla.configuration_vla import VLAConfig

    name = args.config or ('openvla' if args.format == 'openvla-oft' else 'minivla')
    try:
        config = load_config(VLAConfig, name) if Path(name).suffix in ('.yaml', '.yml') else make_policy_config(name)
        if args.dual_encoder:
            config = dataclasses.replace(config, vision=dataclasses.replace(config.vision, dual_encoder=True))
        dtype = getattr(torch, args.dtype) if args.dtype else None
        importer = import_openvla_oft if args.format == 'openvla-oft' else import_minivla
        policy = importer(args.source, config, unnorm_key=args.unnorm_key, dtype=dtype)
        policy.save_pretrained(args.out)
    except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
        print(f'maps-vla import: error: {exc}', file=sys.stderr)
        return 1
    print(f'imported {args.source} ({args.format}) -> {args.out}')
    return 0
