"""Success rate of the scripted expert on every task variant of maps_vla.sim (seeded episodes, no rendering).

    PYTHONPATH=src MUJOCO_GL=egl python benchmarks/sim_expert_success.py --episodes 50 --control-hz 10 --layout compact
    PYTHONPATH=src MUJOCO_GL=egl python benchmarks/sim_expert_success.py --episodes 20 --emoji-layout compact  # 20/20

`--miss 0.045` has the expert close its first grasp that far beside the object (alternating sides) and recover
(`PickPlaceExpert.miss_next_grasp`, the regrasp demos of `maps-vla collect --regrasp-fraction`).
"""

from __future__ import annotations

import argparse
import time

from maps_vla.sim import TASK_VARIANTS, EnvConfig, make_env, make_expert


def success_rate(task: str, variant: str, episodes: int, control_hz: float, layout: str = 'compact',
                 miss: float = 0.0, emoji_layout: str = 'row') -> tuple[int, float, float]:
    """(successes, mean episode steps, seconds) over seeds 0..episodes-1."""
    env = make_env(EnvConfig(task=task, variant=variant, render=False, control_hz=control_hz, layout=layout,
                             emoji_layout=emoji_layout, num_cards=2 if emoji_layout == 'compact' else 4))
    expert = make_expert(env)
    successes, steps = 0, 0
    start = time.perf_counter()
    for seed in range(episodes):
        obs = env.reset(seed=seed)
        expert.reset()
        if miss:
            expert.miss_next_grasp(miss if seed % 2 else -miss)
        while True:
            obs, _, terminated, truncated, info = env.step(expert.get_action(obs))
            steps += 1
            if terminated or truncated:
                break
        successes += info['success']
    env.close()
    return successes, steps / episodes, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=50)
    parser.add_argument('--control-hz', type=float, default=10.0)
    parser.add_argument('--layout', default='compact', help="pick_place layout: 'compact' or 'wide'")
    parser.add_argument('--emoji-layout', default='row', help="emoji layout: 'row' (4 cards) or 'compact' (2)")
    parser.add_argument('--miss', type=float, default=0.0, help='m beside the object of each first grasp (0: none)')
    args = parser.parse_args()
    print(f'| task | variant | success ({args.episodes} seeds, {args.control_hz:g} Hz, {args.layout}, emoji '
          f'{args.emoji_layout}) | mean steps |')
    print('|---|---|---|---|')
    for task, variants in TASK_VARIANTS.items():
        for variant in variants:
            ok, mean_steps, _ = success_rate(task, variant, args.episodes, args.control_hz, args.layout, args.miss,
                                              args.emoji_layout)
            print(f'| {task} | {variant} | {ok}/{args.episodes} = {100 * ok / args.episodes:.0f} % | '
                  f'{mean_steps:.1f} |', flush=True)


if __name__ == '__main__':
    main()
