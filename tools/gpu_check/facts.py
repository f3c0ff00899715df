"""What the GPU check reads from its steps' logs (mmengine Runner output)."""
import re
from typing import Optional


def tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of ``text``."""
    return '\n'.join(text.rstrip().splitlines()[-lines:])


def _last_float(pattern: str, text: str) -> Optional[float]:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def _backend(output: str) -> Optional[str]:
    """The process group's backend; None for a run in one process."""
    if 'Distributed training: True' not in output:
        return None
    # the plugin's fallback logs this line when it swaps NCCL for gloo
    if 'starting the process group with gloo' in output:
        return 'gloo'
    found = re.findall(r"dist_cfg: \{'backend': '(\w+)'", output)
    return found[0] if found else '?'


def training_facts(output: str) -> dict:
    """What a Runner's log says about a training run.

    Args:
        output: The whole log of ``tools/train.py`` or ``dist_train.sh``.

    Returns:
        ``world_size``, ``backend``, ``cuda_available``, ``iterations``,
        ``last_loss``, ``val_top1`` and ``cuda_memory_logged_mib``.
    """
    memory = [int(m) for m in re.findall(r'\bmemory: (\d+)', output)]
    gpus = re.findall(r'GPU number: (\d+)', output)
    return dict(
        world_size=int(gpus[-1]) if gpus else None,
        backend=_backend(output),
        cuda_available='CUDA available: True' in output,
        iterations=len(re.findall(r'Epoch\(train\)\s+\[\d+\]\[\d+/\d+\]',
                                  output)),
        last_loss=_last_float(r'Epoch\(train\).*?\sloss: ([-\d.e+naif]+)',
                              output),
        val_top1=_last_float(r'Epoch\(val\).*?acc/top1: ([\d.]+)', output),
        # mmengine's LoggerHook: max_memory_allocated in MiB since the last
        # log line (reset after each), here every iteration
        cuda_memory_logged_mib=max(memory) if memory else None)


def test_facts(output: str) -> dict:
    """The test accuracies ``tools/test.py`` printed."""
    return dict(
        test_top1=_last_float(r'Epoch\(test\).*?acc/top1: ([\d.]+)', output),
        test_fused_mean1=_last_float(r'Epoch\(test\).*?acc/mean1: ([\d.]+)',
                                     output))
