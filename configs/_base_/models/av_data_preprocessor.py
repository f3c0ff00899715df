# One tensor per modality: RGB normalised with ImageNet statistics, log-mel
# stacked as it is (it is already on a [0, 1] scale).
model = dict(
    data_preprocessor=dict(
        type='MultiModalDataPreprocessor',
        preprocessors=dict(
            imgs=dict(
                type='ActionDataPreprocessor',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                format_shape='NCTHW'),
            audios=dict(type='ActionDataPreprocessor'))))
