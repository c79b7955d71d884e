"""Can a from-scratch VLM use its images at all? Memorize a few VL questions and watch the image tokens.

Trains a copy of a (random-init) VLM checkpoint with AdamW on the first `--examples` questions of one kind from a
co-training folder, then prints the loss and the image-dependent share of the projector output: the standard
deviation across images divided by the total standard deviation. A share near 0 means the image tokens collapsed
to one constant and the model answers from the text alone (docs/results/grinningface.md, §1):

    PYTHONPATH=src python benchmarks/vl_memorization.py --policy outputs/grinningface_cpu/base_vlm \
        --vl outputs/grinningface_cpu/vl_data --lr 1e-3 --clip 1.0
"""

from __future__ import annotations

import argparse
import random

import torch

from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.train.cotrain import VLDataset, collate_vl


@torch.no_grad()
def image_share(policy: VLAPolicy, images: torch.Tensor) -> float:
    """Std of the projector output across images / its total std (images: (N, 3, H, W) in [0, 1])."""
    policy.eval()
    tokens = policy.encode_observation(policy.processor.preprocess_images(images)[:, None])
    policy.train()
    return float(tokens.std(0).mean() / tokens.std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--policy', required=True, help='VLM checkpoint folder (e.g. the experiment base_vlm)')
    parser.add_argument('--vl', required=True, help='co-training folder with vl.jsonl')
    parser.add_argument('--question', default='what', help='keep questions starting with this word')
    parser.add_argument('--examples', type=int, default=64)
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=3e-4)
    parser.add_argument('--clip', type=float, default=0.0, help='max grad norm (0: off)')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    policy = VLAPolicy.from_pretrained(args.policy)
    policy.train()
    data = VLDataset(args.vl)
    items = [data[i] for i, item in enumerate(data.items) if item['question'].startswith(args.question)]
    items = items[:args.examples]
    if not items:
        raise SystemExit(f'no question in {args.vl} starts with {args.question!r}')
    probe = collate_vl(items[:16])['images']
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    print(f'{len(items)} examples, lr {args.lr:g}, clip {args.clip or "off"}; image share at init '
          f'{image_share(policy, probe):.3f}')
    losses = []
    for step in range(1, args.steps + 1):
        loss = policy(collate_vl(rng.sample(items, min(args.batch_size, len(items)))))['loss']
        optimizer.zero_grad()
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.clip)
        optimizer.step()
        losses.append(loss.item())
        if step % 50 == 0:
            print(f'step {step:5d}  loss (mean of last 50) {sum(losses[-50:]) / 50:.3f}')
    print(f'image share after training {image_share(policy, probe):.3f}')


if __name__ == '__main__':
    main()
