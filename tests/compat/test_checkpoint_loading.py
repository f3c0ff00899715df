"""Checkpoints on torch >= 2.6: mmengine's load, our restricted unpickler."""
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmaction_gblend import (UnsafeCheckpointError, load_checkpoint_file,
                             load_pretrained_state_dict)


def mmengine_like_checkpoint(path):
    """What mmengine's Runner saves: tensors, HistoryBuffers, numpy, meta."""
    buffer = HistoryBuffer()
    buffer.update(0.5)
    buffer.update(0.25)
    checkpoint = dict(
        meta=dict(epoch=1, iter=4, seed=0, cfg='model = dict()',
                  dataset_meta=dict(classes=['a', 'b'])),
        state_dict={'fc.weight': torch.ones(2, 3), 'fc.bias': torch.zeros(2)},
        message_hub=dict(log_scalars={'train/loss': buffer},
                         runtime_info=dict(epoch=1, iter=4),
                         resumed_keys=dict(epoch=True)),
        optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0, 1])]),
        param_schedulers=[dict(milestones=__import__('collections').Counter(
            {3: 1}), gamma=0.1)])
    torch.save(checkpoint, path)
    return checkpoint


class RunsCode:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_torch_refuses_mmengine_checkpoints_by_default(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    mmengine_like_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        torch.load(path)


def test_restricted_loader_reads_mmengine_checkpoints(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    original = mmengine_like_checkpoint(path)
    loaded = load_checkpoint_file(path)
    assert loaded['meta'] == original['meta']
    assert torch.equal(loaded['state_dict']['fc.weight'], torch.ones(2, 3))
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert buffer.current() == 0.25 and buffer.mean() == 0.375
    assert loaded['param_schedulers'][0]['milestones'][3] == 1
    # and it is the loader mmengine's Runner now uses for plain paths
    via_mmengine = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert via_mmengine['meta'] == original['meta']


@pytest.mark.parametrize('loader', [
    load_checkpoint_file, load_pretrained_state_dict,
    lambda p: CheckpointLoader.load_checkpoint(p, map_location='cpu')
])
def test_crafted_checkpoint_is_refused_without_running_code(tmp_path, loader):
    marker = tmp_path / 'ran'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)},
                'meta': RunsCode(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match='posix.system') as info:
        loader(path)
    assert 'evil.pth' in str(info.value)
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    # pickle protocol 2 writes ``getattr(obj, name)`` for nested names; a
    # free getattr would reach anything, so only HistoryBuffer's pass
    class Sneaky:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(UnsafeCheckpointError, match='refusing getattr'):
        load_checkpoint_file(path)


def test_pretrained_state_dict_keeps_only_tensors(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    mmengine_like_checkpoint(path)
    state = load_pretrained_state_dict(path)
    assert list(state) == ['fc.weight', 'fc.bias']
    plain = str(tmp_path / 'plain.pth')
    torch.save({'conv.weight': torch.randn(4, 1, 3, 3)}, plain)
    assert list(load_pretrained_state_dict(plain)) == ['conv.weight']
    nested = str(tmp_path / 'nested.pth')
    torch.save({'model': {'a': torch.ones(1)}, 'epoch': 3}, nested)
    assert list(load_pretrained_state_dict(nested)) == ['a']
    with pytest.raises(KeyError, match="no entry 'ema'"):
        load_pretrained_state_dict(nested, key='ema')
    mixed = str(tmp_path / 'mixed.pth')
    torch.save({'state_dict': {'a': torch.ones(1), 'b': 3}}, mixed)
    with pytest.raises(TypeError, match=r"not tensors: \['b'\]"):
        load_pretrained_state_dict(mixed)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_pretrained_state_dict(str(tmp_path / 'nope.pth'))


def test_checkpoint_urls_are_loaded_restricted(tmp_path, monkeypatch):
    """Model-zoo URLs (http, and schemes built on it) use the restricted
    unpickler too; a local HTTP server stands in for the zoo."""
    import functools
    import http.server
    import threading

    from mmengine.runner import checkpoint as mmengine_checkpoint
    serve = tmp_path / 'zoo'
    serve.mkdir()
    torch.save({'state_dict': {'w': torch.ones(2)}}, serve / 'good.pth')
    marker = tmp_path / 'ran'
    torch.save({'meta': RunsCode(marker)}, serve / 'evil.pth')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(serve))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}'
        good = CheckpointLoader.load_checkpoint(f'{url}/good.pth')
        assert torch.equal(good['state_dict']['w'], torch.ones(2))
        assert osp.isfile(tmp_path / 'torch_home' / 'hub' / 'checkpoints' /
                          'good.pth')
        with pytest.raises(UnsafeCheckpointError, match='posix.system'):
            CheckpointLoader.load_checkpoint(f'{url}/evil.pth')
        # what open-mmlab:// and torchvision:// call
        with pytest.raises(UnsafeCheckpointError):
            mmengine_checkpoint.load_from_http(f'{url}/evil.pth')
    finally:
        server.shutdown()
    assert not marker.exists()
