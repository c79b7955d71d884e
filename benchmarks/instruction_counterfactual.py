"""Does a policy read its instruction? The counterfactual ratio and alignment on paired demos (`maps-vla collect
--all-targets`), printed as the median over pairs; `maps_vla.eval.counterfactual` defines both.

`--frame 0` (default) measures at each pair's first frame, where only the words differ (a choice made at once, as in
pick_place's `choice` variant); `--frame ambiguous` at the frames where the twins still share a state but their action
chunks part (a choice made mid-episode, as in the compact emoji layout where the carry passes the nearer card).

    PYTHONPATH=src python benchmarks/instruction_counterfactual.py --policy <folder> --data <paired demos> --pairs 20 \
        --frame ambiguous
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / 'src') not in sys.path:
    sys.path.insert(0, str(ROOT / 'src'))

from maps_vla.eval.counterfactual import counterfactual, find_pairs, pair_frames, summarize  # noqa: E402


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
    summary = summarize(rows)
    where = (f'{sum(len(r["frames"]) for r in rows)} ambiguous frames' if args.frame == 'ambiguous'
             else f'frame {args.frame}')
    print(f'{len(rows)} pairs at {where}: median counterfactual ratio {summary["ratio"]:.3f}, alignment '
          f'{summary["alignment"]:.3f} (policy gap {summary["policy_gap"]:.4f}, expert gap '
          f'{summary["expert_gap"]:.4f}, policy error to the demo {summary["error_to_demo"]:.4f}; action units)')
    if args.json:
        Path(args.json).write_text(json.dumps({'summary': summary, 'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
