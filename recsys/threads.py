"""Thread pools for small work: one member's request is too small to share out between threads.

BLAS (OpenBLAS), OpenMP and PyTorch each keep a pool of threads. For a single member's
candidates (a few hundred rows) waking those pools costs more than the arithmetic: on a busy
2-core machine 10-20x for a 150 x 384 matrix product. `single_threaded()` limits every pool to
one thread for the duration of a block. It is reference-counted under a lock, so requests served
concurrently (the app's sessions are threads) enter and leave it safely, and the original
limits come back when the last one leaves.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

__all__ = ["single_threaded"]

_lock = threading.Lock()
_depth = 0
_restore: list = []


@lru_cache(maxsize=1)
def _controller_for(n_modules: int):
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _controller():
    """The pools of the libraries loaded now (a new import may bring a new pool)."""
    return _controller_for(len(sys.modules))


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with BLAS, OpenMP and (when loaded) PyTorch limited to one thread."""
    global _depth
    with _lock:
        if _depth == 0:
            _restore.clear()
            limiter = _controller().limit(limits=1)
            _restore.append(limiter.restore_original_limits)
            torch = sys.modules.get("torch")
            if torch is not None:
                before = torch.get_num_threads()
                torch.set_num_threads(1)
                _restore.append(lambda: torch.set_num_threads(before))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for undo in reversed(_restore):
                    undo()
                _restore.clear()
