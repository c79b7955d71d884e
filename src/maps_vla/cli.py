"""`maps-vla`: one command line for data, training, evaluation and the demo.

Each verb lives in `maps_vla/scripts/<verb>.py` with `add_arguments(parser)` and `run(args) -> int`; only the
chosen verb's module is imported, so `maps-vla --help` stays fast and a verb's heavy imports stay its own.

A bad argument or config value, a missing file or a damaged checkpoint that a verb does not report itself
(ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError) becomes one line
`maps-vla VERB: error: ...` and exit status 2, not a traceback; `-v` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ['main']

# verb -> (module, one-line help)
_VERBS: dict[str, tuple[str, str]] = {
    'demo': ('maps_vla.scripts.demo', 'the whole loop in sim on CPU: demos, MAPS fine-tune, ID/OOD eval, report'),
    'lambdas': ('maps_vla.scripts.lambdas', "print the MAPS λ of every module of a model or checkpoint"),
    'collect': ('maps_vla.scripts.collect', 'record scripted-expert demonstrations in the MuJoCo sim'),
    'import': ('maps_vla.scripts.import_checkpoint', 'convert an OpenVLA-OFT or MiniVLA checkpoint folder into ours'),
    'pretrain': ('maps_vla.scripts.pretrain', 'build the small VLA prior (pick_place demos + emoji VL co-training)'),
    'train': ('maps_vla.scripts.train', 'fine-tune a VLA policy with MAPS (or a baseline) on episodes'),
    'eval': ('maps_vla.scripts.eval', 'roll out a policy in the sim: ID/OOD success table, plot, videos'),
    'overfit': ('maps_vla.scripts.overfit', 'overfit a few demos, replay their seeds: a gate for a training setting'),
    'replay': ('maps_vla.scripts.replay', 'run the robot runtime (policy, smoother, safety) offline on a ROS 2 bag'),
    'teleop': ('maps_vla.scripts.teleop', 'record teleoperated demos in the sim (keyboard, gamepad, SpaceMouse)'),
    'experiment': ('maps_vla.scripts.experiment', 'reproduce a claim end to end: grinningface (held-out emojis)'),
    'bag2episodes': ('maps_vla.scripts.bag2episodes', 'convert a recorded teleop ROS 2 bag into LeRobot episodes'),
    'convert': ('maps_vla.scripts.convert', 'rewrite a LeRobot dataset as codebase v3.0 or v2.1 (both ways)'),
}


# What bad arguments, configs and files raise (config validation quotes the bad value); anything else is a bug and
# keeps its traceback.
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError)


def _verb_module(verb: str):
    return importlib.import_module(_VERBS[verb][0])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog='maps-vla', description=__doc__.splitlines()[0])
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    verbs = parser.add_subparsers(dest='verb', required=True, metavar='VERB')
    chosen = next((a for a in argv if not a.startswith('-')), None)
    for verb, (_, help_text) in _VERBS.items():
        sub = verbs.add_parser(verb, help=help_text, description=help_text)
        if verb == chosen:
            _verb_module(verb).add_arguments(sub)
    args, extra = parser.parse_known_args(argv)
    # argparse cannot give one positional list the words on both sides of an option (NAME --config F K=V):
    # KEY=VALUE words it left over join the verb's overrides
    if extra and isinstance(getattr(args, 'overrides', None), list) and all('=' in w and not w.startswith('-')
                                                                            for w in extra):
        args.overrides += extra
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if not args.verbose:  # accelerate logs 5 INFO lines per checkpoint, and warns of the lm_head we tie on purpose
        logging.getLogger('accelerate').setLevel(logging.WARNING)
        logging.getLogger('accelerate.utils.other').addFilter(_drop_tied_weight_warning)
    try:
        return int(_verb_module(args.verb).run(args) or 0)
    except _USER_ERRORS as exc:
        if args.verbose:
            raise
        print(f'maps-vla {args.verb}: error: {exc}', file=sys.stderr)
        return 2


def _drop_tied_weight_warning(record: logging.LogRecord) -> bool:
    return 'Removed shared tensor' not in record.getMessage()


if __name__ == '__main__':
    sys.exit(main())
