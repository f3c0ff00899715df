"""MultiHeadAccMetric: fused accuracy first, then every head's."""
import torch
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample


def sample(label, fused, rgb, audio):
    s = ActionDataSample().set_gt_label(label)
    s.set_pred_score(torch.tensor(fused))
    s.set_field(dict(rgb=torch.tensor(rgb), audio=torch.tensor(audio)),
                'head_scores')
    return s.to_dict()


def test_fused_keys_first_and_per_head_accuracies():
    metric = METRICS.build(dict(type='MultiHeadAccMetric'))
    metric.dataset_meta = {}
    # fused right 2/2, rgb right 1/2, audio right 0/2
    metric.process(None, [
        sample(0, [0.9, 0.1], [0.8, 0.2], [0.3, 0.7]),
        sample(1, [0.2, 0.8], [0.6, 0.4], [0.6, 0.4]),
    ])
    result = metric.evaluate(2)
    keys = list(result)
    assert keys[0] == 'acc/top1'  # what save_best='auto' picks: fused
    assert result['acc/top1'] == 1.0
    assert result['acc/rgb_top1'] == 0.5
    assert result['acc/audio_top1'] == 0.0
    assert {'acc/top5', 'acc/mean1', 'acc/rgb_top5', 'acc/audio_mean1'} <= \
        set(keys)


def test_works_without_head_scores():
    metric = METRICS.build(dict(type='MultiHeadAccMetric'))
    s = ActionDataSample().set_gt_label(1)
    s.set_pred_score(torch.tensor([0.1, 0.9]))
    metric.process(None, [s.to_dict()])
    assert metric.evaluate(1) == {'acc/top1': 1.0, 'acc/top5': 1.0,
                                  'acc/mean1': 1.0}
