# The demo data through the audio-visual pipeline and data preprocessor,
# without a model: what `make demo` loads (tools/demo.py).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/demo_av.py',
    '../_base_/models/av_data_preprocessor.py'
]
