"""`maps-vla eval --policy outputs/train/policy --task pick_place`: ID/OOD success rates in the MuJoCo sim."""

from __future__ import annotations

import argparse
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--policy', required=True, help="a policy checkpoint folder, 'expert' or 'random'")
    parser.add_argument('--task', default='pick_place', help="sim task: 'pick_place' or 'emoji'")
    parser.add_argument('--variants', default=None,
                        help="comma-separated variants (default: all of the task's; 'train' is ID, the rest OOD)")
    parser.add_argument('--episodes', type=int, default=10, help='episodes (seeds) per variant')
    parser.add_argument('--seed', type=int, default=10_000, help='first evaluation seed (away from training seeds)')
    parser.add_argument('--max-steps', type=int, default=150, help='env steps per episode at most')
    parser.add_argument('--execute-steps', type=int, default=None, help='actions run per chunk before re-inferring')
    parser.add_argument('--smoothing', default=None, choices=['temporal_ensemble', 'crossfade', 'none'],
                        help='blend overlapping chunks as the runtime smoother does, re-inferring every '
                             '--execute-steps steps (default 1); temporal_ensemble is ACT\'s inference '
                             '(default: run each chunk open-loop)')
    parser.add_argument('--videos', type=int, default=1, help='rollout videos saved per variant')
    parser.add_argument('--out', default='outputs/eval', help='report folder (markdown, CSV, PNG, videos)')
    parser.add_argument('--device', default='cpu', help="torch device for checkpoint policies, e.g. 'cuda'")
    parser.add_argument('--image-size', type=int, default=None,
                        help='camera side in px (default: the frame size the checkpoint was trained on, else its '
                             'input size; 224 for expert/random)')


def run(args: argparse.Namespace) -> int:
    from maps_vla.eval.evaluate import evaluate
    from maps_vla.eval.policies import BoundExpertPolicy, RandomPolicy, camera_side
    from maps_vla.policy import EE_DELTA_ACTION
    from maps_vla.sim import TASK_VARIANTS, EnvConfig, make_env, make_expert

    if args.task not in TASK_VARIANTS:
        print(f'maps-vla eval: error: unknown task {args.task!r}; known: {", ".join(TASK_VARIANTS)}', file=sys.stderr)
        return 2
    known = TASK_VARIANTS[args.task]
    names = args.variants.split(',') if args.variants else list(known)
    unknown = [v for v in names if v not in known]
    if unknown:
        print(f'maps-vla eval: error: {args.task} has no variants {unknown}; known: {", ".join(known)}', file=sys.stderr)
        return 2
    if args.image_size is not None and not 16 <= args.image_size <= 2048:
        print(f'maps-vla eval: error: --image-size must be in 16..2048 px, got {args.image_size}', file=sys.stderr)
        return 2
    env_factory = make_env
    if args.policy == 'expert':
        policy = BoundExpertPolicy(make_env, make_expert)
        env_factory = policy.make_env
    elif args.policy == 'random':
        policy = RandomPolicy(EE_DELTA_ACTION, seed=args.seed)
    else:
        from maps_vla.model.vla.modeling_vla import VLAPolicy
        try:
            policy = VLAPolicy.from_pretrained(args.policy, device=args.device)
        except (FileNotFoundError, ValueError, TypeError) as exc:
            print(f'maps-vla eval: error: {exc}', file=sys.stderr)
            return 1
    image_size = args.image_size or camera_side(policy)
    variants = {v: EnvConfig(task=args.task, variant=v, image_size=(image_size, image_size)) for v in names}
    report = evaluate(env_factory, policy, variants, list(range(args.seed, args.seed + args.episodes)),
                      max_steps=args.max_steps, ood=[v for v in names if v != 'train'],
                      execute_steps=args.execute_steps, smoothing=args.smoothing, videos_per_variant=args.videos,
                      title=f'{args.task}: {args.policy}')
    report.save(args.out)
    print(report.to_markdown())
    print(f'wrote {args.out}')
    return 0
