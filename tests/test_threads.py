"""`single_threaded`: this thread's pools limited inside, the original limits back after, threads independent."""

import threading

import numpy as np
import torch
from threadpoolctl import threadpool_info

from recsys.threads import single_threaded


def _blas_threads() -> list[int]:
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure BLAS is loaded
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_limits_inside_and_restores_after():
    before, torch_before = _blas_threads(), torch.get_num_threads()
    assert before, "numpy's BLAS should be visible to threadpoolctl"
    with single_threaded():
        assert _blas_threads() == [1] * len(before)
        assert torch.get_num_threads() == 1  # torch's intra-op pool runs on OpenMP, limited with it
        with single_threaded():  # nested: still one thread, and leaving the inner block keeps the limit
            assert torch.get_num_threads() == 1
        assert _blas_threads() == [1] * len(before) and torch.get_num_threads() == 1
    assert _blas_threads() == before and torch.get_num_threads() == torch_before


def test_concurrent_requests_each_run_single_threaded_and_leave_others_alone():
    torch_before = torch.get_num_threads()
    torch.set_num_threads(2)  # as the deep ranker's fit does: torch then re-applies it in each new thread
    inside = threading.Barrier(4)
    seen: list[int] = []

    def request() -> None:
        with single_threaded():
            inside.wait(timeout=10)  # all four are inside at once
            seen.append(torch.get_num_threads())
            inside.wait(timeout=10)
        seen.append(-torch.get_num_threads())

    workers = [threading.Thread(target=request) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=20)
    torch.set_num_threads(torch_before)
    assert sorted(seen)[-4:] == [1, 1, 1, 1]
    assert sorted(seen)[:4] == [-2, -2, -2, -2]  # each thread has its own setting back after its block
