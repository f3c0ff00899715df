"""A G-Blend run's history: its entries, what each says of the run, and
the JSON-lines file they are written to."""
import copy
import os.path as osp
from typing import Dict, List, Optional

from .history_file import append_history, rewrite_history


class BlendHistory:
    """The entries of a run (estimates, replayed changes, the release of
    V), each written to ``<work_dir>/<file_name>`` as it is made.

    Every entry also says what the run is: its length, the weights it
    started with, what the main run trains on (``'all'``: V included,
    ``'part'``: V left out) and, in the first entry, the untrained heads'
    held-out losses against log C (``initial_check``).

    Args:
        file_name: Name of the file in the work dir.
    """

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.entries: List[dict] = []
        self.path: Optional[str] = None
        self.initial_weights: Optional[Dict[str, float]] = None
        self.main_data: Optional[str] = None
        self.initial_check: Optional[dict] = None

    def open(self, work_dir: str) -> None:
        """Write the file anew from the entries. The checkpoint's entries
        (none when starting afresh) are the truth: an interrupted run, or
        an earlier run in this work dir, may have left other lines."""
        self.path = osp.join(work_dir, self.file_name)
        rewrite_history(self.path, self.entries)

    def add(self, entry: dict, max_epochs: int) -> dict:
        """Complete ``entry`` with the run's fields, keep and write it."""
        entry.update(max_epochs=max_epochs,
                     initial_weights=self.initial_weights)
        if self.main_data is not None:
            entry['main_trains_on'] = self.main_data
        if self.initial_check is not None and not any(
                'initial_check' in e for e in self.entries):
            entry['initial_check'] = self.initial_check
        self.entries.append(entry)
        append_history(self.path, entry)
        return entry

    def has_event(self, event: str) -> bool:
        return any(e.get('event') == event for e in self.entries)

    def state_dict(self) -> dict:
        return dict(history=copy.deepcopy(self.entries),
                    initial_check=copy.deepcopy(self.initial_check))

    def load_state_dict(self, state: dict) -> None:
        self.entries = list(state.get('history', []))
        self.initial_check = state.get('initial_check')
