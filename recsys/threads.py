"""Thread pools for small work: one member's request is too small to share out between threads.

BLAS (OpenBLAS), OpenMP and PyTorch (through its OpenMP runtime) keep pools of threads. For a
single member's candidates (a few hundred rows) waking those pools costs more than the
arithmetic: on a busy 2-core machine 10-20x for a 150 x 384 matrix product. `single_threaded()`
limits every pool to one thread for the duration of a block.

threadpoolctl sets OpenMP's limits (PyTorch's pool included) for the calling thread; OpenBLAS built
with pthreads has one process-wide pool, which threadpoolctl lets only one live thread control at a
time (others' limits are no-ops). Its handles work reliably only in the thread that made them, so
each thread keeps its own controller and nesting depth: requests served concurrently (the app's
sessions are threads) never undo each other's limits. Threads that batch work fans out to are
short-lived, so none keeps control of OpenBLAS after its batch.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["single_threaded", "limited"]

_local = threading.local()


def _controller():
    """This thread's controller of the pools loaded now (a new import may bring a new pool)."""
    from threadpoolctl import ThreadpoolController

    n = len(sys.modules)
    cached = getattr(_local, "controller", None)
    if cached is None or cached[0] != n:
        cached = (n, ThreadpoolController())
        _local.controller = cached
    return cached[1]


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with this thread's BLAS and OpenMP (PyTorch's too) limited to one thread."""
    depth = getattr(_local, "depth", 0)
    torch = sys.modules.get("torch")
    if depth == 0 and torch is not None:
        # torch applies its process-wide thread setting to a thread on the thread's first use of it,
        # which would undo a limit set before: let that happen first
        torch.get_num_threads()
    limiter = _controller().limit(limits=1) if depth == 0 else None
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth
        if limiter is not None:
            limiter.restore_original_limits()



def limited() -> bool:
    """Whether this thread runs inside `single_threaded` (then work must not raise its own thread counts)."""
    return getattr(_local, "depth", 0) > 0
