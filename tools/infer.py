"""Classify a video file with audio: top-k classes, fused and per head.

    python tools/infer.py CONFIG CHECKPOINT VIDEO [--topk 5]
        [--label-map classes.txt]

Uses mmaction2's ``init_recognizer`` and ``inference_recognizer`` with the
config's test pipeline, so the clip is sampled, decoded (video and its audio
track) and scored exactly as in ``tools/test.py``.
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmaction.apis import inference_recognizer, init_recognizer

import mmaction_gblend  # noqa: F401  (platform fixes, registration)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('video', help='video file with an audio track')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument(
        '--label-map', help='text file with one class name per line')
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args(argv)


def top_classes(scores: torch.Tensor, k: int,
                names: Optional[List[str]]) -> List[tuple]:
    """The ``k`` best ``(class name or index, score)`` pairs."""
    values, indices = scores.topk(min(k, scores.numel()))
    return [(names[i] if names else i, float(v))
            for v, i in zip(values.tolist(), indices.tolist())]


def classify(config: str, checkpoint: str, video: str, topk: int = 5,
             label_map: Optional[str] = None,
             device: str = 'cpu') -> Dict[str, List[tuple]]:
    """Score ``video``; return the top-k classes of the prediction and of
    every modality head (``{'prediction': [...], '<head>': [...]}``)."""
    if not osp.isfile(video):
        raise FileNotFoundError(f'video {video} not found')
    names = None
    if label_map:
        with open(label_map, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    model = init_recognizer(config, checkpoint, device=device)
    result = inference_recognizer(model, video)
    table = {'prediction': top_classes(result.pred_score, topk, names)}
    for head, scores in (result.get('head_scores') or {}).items():
        table[head] = top_classes(scores, topk, names)
    return table


def main(argv=None) -> None:
    args = parse_args(argv)
    table = classify(args.config, args.checkpoint, args.video, args.topk,
                     args.label_map, args.device)
    for head, ranked in table.items():
        print(f'{head}:')
        for rank, (name, score) in enumerate(ranked, start=1):
            print(f'  {rank}. {name}  {score:.4f}')


if __name__ == '__main__':
    main()
