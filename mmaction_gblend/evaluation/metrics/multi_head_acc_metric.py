"""Accuracy of the fused prediction and of every modality head."""
from collections import OrderedDict
from typing import Any, Dict, List, Sequence

from mmaction.evaluation import AccMetric
from mmaction.registry import METRICS


@METRICS.register_module()
class MultiHeadAccMetric(AccMetric):
    """mmaction2's ``AccMetric`` on ``pred_score`` and on each head's scores.

    The prediction (``pred_score``, the fused head) keeps the stock names,
    ``acc/top1``, ``acc/top5``, ``acc/mean1``, and comes first, so
    ``CheckpointHook(save_best='auto')`` picks the fused top-1. Each modality
    head of ``head_scores`` adds ``acc/<head>_top1`` and so on.

    Args are those of ``AccMetric``.
    """

    def process(self, data_batch: Sequence[Any],
                data_samples: Sequence[Dict]) -> None:
        for sample in data_samples:
            label = sample['gt_label']
            heads = sample.get('head_scores') or {}
            self.results.append(
                dict(
                    pred=sample['pred_score'].cpu().numpy(),
                    heads={k: v.cpu().numpy()
                           for k, v in heads.items()},
                    label=label.item() if label.numel() == 1 else
                    label.cpu().numpy()))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        labels = [r['label'] for r in results]
        metrics = OrderedDict(
            self.calculate([r['pred'] for r in results], labels))
        for head in results[0]['heads']:
            head_metrics = self.calculate(
                [r['heads'][head] for r in results], labels)
            metrics.update(
                (f'{head}_{k}', v) for k, v in head_metrics.items())
        return metrics
