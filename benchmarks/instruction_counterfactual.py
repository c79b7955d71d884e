"""Does a policy read its instruction? The counterfactual ratio on paired demos (`maps-vla collect --all-targets`).

A paired dataset records each scene once per target: consecutive episodes whose first frames are identical and whose
instructions differ. At frame F of such a pair the picture is the same, so whatever separates the two demos' action
chunks is the words. For each pair this prints

    ratio = mean |policy(image, instruction A) - policy(image, instruction B)| / mean |demo A chunk - demo B chunk|

over the chunk's actions and dimensions, in the dataset's action units: 1 means the policy changes its actions with
the words as much as the expert did, 0 that it ignores them. The ratio has no sign; the alignment does:

    alignment = <policy(A) - policy(B), demo A - demo B> / |demo A - demo B|^2

1 when the words move the policy's chunk as they moved the expert's, 0 when they move it elsewhere (or not at all),
negative when the other way. The summary is the median over pairs, and the policy's
error to the demo it should follow (mean |policy(A) - demo A|) beside the expert's gap, so a ratio near 1 from a
policy that moves at random is told apart.

`--frame ambiguous` measures instead at the frames where the twins still share a state but their action chunks part
(`maps_vla.train.frame_pool.ambiguous_frames`: mid-episode, when the choice falls there, as in the compact emoji
layout where the carry passes the nearer card); gaps are averaged over those frames of each pair.

    PYTHONPATH=src python benchmarks/instruction_counterfactual.py --policy <folder> --data <paired demos> --pairs 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / 'src') not in sys.path:
    sys.path.insert(0, str(ROOT / 'src'))


def find_pairs(dataset, limit: int) -> list[tuple[int, int]]:
    """Consecutive episodes with the same first frames (every camera) and different instructions."""
    pairs: list[tuple[int, int]] = []
    episode = 0
    while episode + 1 < dataset.num_episodes and len(pairs) < limit:
        a, b = (dataset.episodes[episode].from_index, dataset.episodes[episode + 1].from_index)
        first_a, first_b = dataset.sample(a), dataset.sample(b)
        same = all(np.array_equal(first_a[k], first_b[k]) for k in dataset.image_keys)
        if same and first_a['task'] != first_b['task']:
            pairs.append((episode, episode + 1))
            episode += 2
        else:
            episode += 1
    return pairs


def pair_frames(dataset, pairs: list[tuple[int, int]], frame: str, chunk: int) -> list[list[int]]:
    """The frames (within the episode) measured for each pair: `frame` itself, or the pair's ambiguous frames."""
    if frame != 'ambiguous':
        return [[int(frame)] for _ in pairs]
    from maps_vla.train.frame_pool import ambiguous_frames

    found = set(ambiguous_frames(dataset, chunk))
    return [[i - dataset.episodes[ep_a].from_index for i in range(dataset.episodes[ep_a].from_index,
                                                                 dataset.episodes[ep_a].to_index) if i in found]
            for ep_a, _ in pairs]


def counterfactual(policy, dataset, pairs: list[tuple[int, int]], frames: list[list[int]],
                   chunk: int) -> list[dict[str, float]]:
    from maps_vla.policy import ACTIONS

    rows = []
    for (ep_a, ep_b), measured in zip(pairs, frames):
        gaps = []
        for frame in measured:
            a = dataset.sample(dataset.episodes[ep_a].from_index + frame, chunk)
            b = dataset.sample(dataset.episodes[ep_b].from_index + frame, chunk)
            obs = {k: a[k] for k in dataset.image_keys}  # the dataset's camera keys are the policy's observation keys
            as_a = policy.infer({**obs, 'task': a['task']})[ACTIONS][:chunk]
            as_b = policy.infer({**obs, 'task': b['task']})[ACTIONS][:chunk]
            expert = a['action'] - b['action']
            gaps.append((np.abs(as_a - as_b).mean(), np.abs(expert).mean(), np.abs(as_a - a['action']).mean(),
                         float(np.sum((as_a - as_b) * expert)), float(np.sum(expert * expert))))
        if not gaps:
            continue
        policy_gap, expert_gap, error, along, norm = (float(v) for v in np.mean(gaps, axis=0))
        rows.append({'episodes': (ep_a, ep_b), 'frames': measured, 'policy_gap': policy_gap,
                     'expert_gap': expert_gap, 'ratio': policy_gap / max(expert_gap, 1e-9), 'error_to_demo': error,
                     'alignment': along / max(norm, 1e-12)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--policy', required=True, help='a policy folder (save_pretrained output)')
    parser.add_argument('--data', required=True, help='a dataset recorded with `maps-vla collect --all-targets`')
    parser.add_argument('--pairs', type=int, default=20, help='pairs to measure (the first ones found)')
    parser.add_argument('--frame', default='0', help="frame of each episode (0: the first, where only words differ), "
                        "or 'ambiguous': where the pair's states agree and their action chunks part")
    parser.add_argument('--json', default=None, help='also write the rows and the summary here')
    args = parser.parse_args(argv)

    from maps_vla.data.dataset import Dataset
    from maps_vla.model.factory import load_policy

    dataset = Dataset(args.data)
    pairs = find_pairs(dataset, args.pairs)
    if not pairs:
        print(f'{args.data}: no pairs (consecutive episodes with the same first frames and different instructions); '
              'record it with `maps-vla collect --all-targets`', file=sys.stderr)
        return 1
    if args.frame != 'ambiguous' and not args.frame.isdigit():
        parser.error(f"--frame must be a frame number or 'ambiguous', got {args.frame!r}")
    policy = load_policy(args.policy)
    chunk = policy.config.chunk_size
    rows = counterfactual(policy, dataset, pairs, pair_frames(dataset, pairs, args.frame, chunk), chunk)
    if not rows:
        print(f'{args.data}: no ambiguous frames in the {len(pairs)} pairs', file=sys.stderr)
        return 1
    summary = {key: statistics.median(r[key] for r in rows) for key in ('ratio', 'alignment', 'policy_gap',
                                                                       'expert_gap', 'error_to_demo')}
    where = (f'{sum(len(r["frames"]) for r in rows)} ambiguous frames' if args.frame == 'ambiguous'
             else f'frame {args.frame}')
    print(f'{len(rows)} pairs at {where}: median counterfactual ratio {summary["ratio"]:.3f}, alignment {summary["alignment"]:.3f} '
          f'(policy gap {summary["policy_gap"]:.4f}, expert gap {summary["expert_gap"]:.4f}, policy error to the '
          f'demo {summary["error_to_demo"]:.4f}; action units)')
    if args.json:
        Path(args.json).write_text(json.dumps({'summary': summary, 'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
