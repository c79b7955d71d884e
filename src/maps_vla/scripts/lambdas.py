"""`maps-vla lambdas`: print the MAPS λ of every module of a model skeleton or a safetensors checkpoint.

Examples:
    maps-vla lambdas --model minivla --lambda-max 3.2
    maps-vla lambdas --model openvla --schedule linear-code
    maps-vla lambdas --checkpoint path/to/model.safetensors   (or a folder of *.safetensors shards)

Checkpoints are read from their headers only (names and shapes, no weights). Header keys are alphabetical, so the
names are first put into stack order; every tensor counts as trainable except a frozen dual-encoder copy.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ['add_arguments', 'run', 'checkpoint_shapes']

logger = logging.getLogger(__name__)
_MODELS = ('minivla', 'openvla', 'toy')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from maps_vla.maps.schedules import SCHEDULES

    source = parser.add_mutually_exclusive_group()
    source.add_argument('--model', choices=_MODELS, default='minivla', help='a built-in skeleton (default minivla)')
    source.add_argument('--checkpoint', type=Path, help='a .safetensors file or a folder of them')
    parser.add_argument('--lambda-max', type=float, default=1.0, help='largest λ (default 1.0)')
    parser.add_argument('--schedule', default='linear', help=f'one of {", ".join(SCHEDULES)} (default linear)')
    parser.add_argument('--stack', nargs='+', metavar='PREFIX', help='explicit ordered module-name prefixes')
    parser.add_argument('--new-modules', nargs='*', metavar='PREFIX', help='modules without pretrained weights '
                        '(default action_head proprio_projector)')


def checkpoint_shapes(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor in a safetensors file or in all *.safetensors of a folder, from the headers.

    Raises:
        FileNotFoundError: the path does not exist or the folder holds no .safetensors file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'checkpoint {str(path)!r} does not exist')
    files = sorted(path.glob('*.safetensors')) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f'no .safetensors file in {str(path)!r}')
    out = []
    for file in files:
        with safe_open(str(file), framework='pt') as reader:
            out += [(name, tuple(reader.get_slice(name).get_shape())) for name in reader.keys()]
    return out


def _skeleton(name: str) -> list[tuple[str, tuple[int, ...]]]:
    from maps_vla.maps import toy

    if name == 'toy':
        return [(n, tuple(p.shape)) for n, p in toy.ToyVLA().named_parameters()]
    return toy.minivla_like_names() if name == 'minivla' else toy.openvla_like_names()


def run(args: argparse.Namespace) -> int:
    from maps_vla.maps.param_groups import lambda_table, resolve_stack
    from maps_vla.maps.stacks import DEFAULT_NEW_MODULES

    new_modules = DEFAULT_NEW_MODULES if args.new_modules is None else tuple(args.new_modules)
    try:
        if args.checkpoint is not None:
            pairs = checkpoint_shapes(args.checkpoint)
            source = str(args.checkpoint)
        else:
            pairs = _skeleton(args.model)
            source = f'{args.model} skeleton'
        stack = resolve_stack([n for n, _ in pairs], args.stack, new_modules=new_modules)
        shapes = dict(pairs)
        ordered = [(n, shapes[n]) for n in stack.canonical_order(shapes)]
        table = lambda_table(ordered, args.lambda_max, args.schedule, stack=stack, new_modules=new_modules)
    except (ValueError, FileNotFoundError) as err:
        print(f'maps-vla lambdas: error: {err}', file=sys.stderr)
        return 2
    print(f'MAPS λ per module: {source}, schedule={args.schedule}, lambda_max={args.lambda_max:g}, {stack!r}')
    print(table)
    return 0
