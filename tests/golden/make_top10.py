"""Writes tests/golden/top10_sample.csv: the top-10 lists of 500 sample members from a pipeline whose
numbers depend on the CPU as little as found so far (`CONFIG`: every source but the two-tower network).

The file pins today's results; `tests/test_golden.py` trains the current code the same way and
compares. History: the first golden file (commit b1f4f5a, regenerated on 75ddd61) held the default
pipeline's lists before the batch-path rewrite, and the rewrite reproduced them exactly (scores to
1e-4) on the machine that wrote them. The default pipeline's two-tower network is trained by torch,
whose kernels differ by CPU (AVX-512 or not): on another machine 486 of those 500 lists differ with
the same code. Popularity, EASE, ALS and content scores agreed to every digit across both machines
(their NDCG@10 in bench/results/eval_sample.json), so the golden pipeline leaves the two-tower out,
and it runs with one thread per pool and a fresh embedding cache (`golden_lists`): with
OMP_NUM_THREADS=1 against the default, 69 of the 500 lists differed, and embeddings another test had
cached moved 6. Regenerated when synopses came to be encoded one text at a time (a vector no longer
depends on which other texts shared its batch, `recsys.embeddings.TextEncoder`): 97 of the 500 lists
moved with those last-bit (1e-7) changes; torch is now imported before the thread limit, which otherwise
covered torch's pool in the test suite (torch already loaded) but not in this script (4 lists differed).
Regenerated when the default changed (docs/online-quality.md: the ranker trained on impressions with
their slots, lists in expected-minutes order, exposure and holiday-season features; all 500 lists
moved). The file before that is kept as top10_previous_default.csv and pins
`recsys.pipeline.PREVIOUS_DEFAULT`, which reproduced it exactly (0 of 500 lists differed): the old
default the A/B page runs is the old default. Both regenerated on 2026-12-07: a fresh install that day
(only torch and pyspark pinned then), on a machine with AVX-512, moved 100 of the 500 previous-default
lists with the code unchanged (scores by a median 1.7e-4; a floating package or the CPU), so constraints.txt
now pins the numerical stack; and the default's negatives
became hash-sampled (`TrainingConfig.sampler`: the same rows in one process and on Spark) with its
impression rows in one canonical order, which moved its lists (PREVIOUS_DEFAULT keeps the random draw).
Regenerated when the default's impressions came to be weighted by the inverse of their logged propensity
(`labels.propensity_weights`): all 500 lists moved; PREVIOUS_DEFAULT keeps them off and its file did not move.
Part of this pipeline still depends on the CPU: on 2026-12-08 an AMD EPYC without AVX-512 gave 224 (default)
and 100 (previous default) other lists than the files above, written on an AVX-512 machine, with the same code
(the code of the day before and after that day's change wrote byte-identical files there; scores off by a
median 1.4e-3 and 1.7e-4). So each class of CPU has its own pinned files (`pinned_path`): AVX-512 machines the
ones beside this script, others those in noavx512/ (written that day on that machine). Regenerate on a machine
of the class whose files move.
Usage: .venv/bin/python tests/golden/make_top10.py [--previous] [--out PATH (default: `pinned_path`)]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MEMBERS = 500
SEED = 0
#: The golden pipeline: the default configuration without the CPU-dependent two-tower source.
SOURCES = ("popularity", "ease", "als", "content")


def cpu_class() -> str:
    """"avx512" where the CPU has AVX-512 (or its flags cannot be read), else "noavx512": the numerics differ."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx512"
    return "avx512" if "avx512f" in flags else "noavx512"


def pinned_path(name: str) -> Path:
    """The pinned file `name` for this machine's class of CPU (`cpu_class`)."""
    here = Path(__file__).parent
    return here / name if cpu_class() == "avx512" else here / "noavx512" / name


def members(dataset) -> list[str]:
    """The 500 members the golden lists are for (a seeded draw, sorted)."""
    ids = dataset.users["user_id"].astype(str).to_numpy()
    rng = np.random.default_rng(SEED)
    return sorted(rng.choice(ids, size=MEMBERS, replace=False).tolist())


def previous_default(**changes):
    """`PREVIOUS_DEFAULT` with `changes` (the golden sources), called like a RecommenderConfig."""
    from dataclasses import replace

    from recsys.pipeline import PREVIOUS_DEFAULT

    return replace(PREVIOUS_DEFAULT, **changes)


def golden_lists(data, recommender, config, cache: str | Path | None = None):
    """The golden members' lists of `golden_run`."""
    return golden_run(data, recommender, config, cache)[1]


def golden_run(data, recommender, config, cache: str | Path | None = None):
    """(model, lists): the golden pipeline and its lists of the golden members, fitted and served with every thread pool at one
    thread and synopsis embeddings encoded afresh into an empty cache: BLAS, OpenMP and torch reductions
    round differently with more threads, and an embedding encoded earlier (by another test, in another
    batch of texts, under other thread settings) differs in its last bits, so neither may move a list.
    `cache`: an embedding cache that only golden_lists calls have filled (so every vector in it was encoded
    the same way), shared by the golden runs of one process; an empty one of its own otherwise."""
    import contextlib
    import os
    import tempfile

    from recsys.threads import single_threaded

    import torch  # noqa: F401  imported before the limit, so that it covers torch's pool alone or in a suite

    before = os.environ.get("RECSYS_CACHE_DIR")
    folder = contextlib.nullcontext(str(cache)) if cache is not None else tempfile.TemporaryDirectory()
    with folder as cache, single_threaded():
        os.environ["RECSYS_CACHE_DIR"] = cache
        try:
            model = recommender(config(sources=SOURCES)).fit(data)
            return model, model.recommend(members(data), k=10)
        finally:
            if before is None:
                os.environ.pop("RECSYS_CACHE_DIR", None)
            else:
                os.environ["RECSYS_CACHE_DIR"] = before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", action="store_true", help="the previous default (PREVIOUS_DEFAULT)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from recsys.data import load_dataset
    from recsys.pipeline import Recommender, RecommenderConfig

    data = load_dataset("sample")
    config = previous_default if args.previous else RecommenderConfig
    args.out = args.out or pinned_path("top10_previous_default.csv" if args.previous else "top10_sample.csv")
    args.out.parent.mkdir(exist_ok=True)
    lists = golden_lists(data, Recommender, config)
    out = lists[["user_id", "rank", "item_id", "score"]]
    tmp = args.out.with_suffix(".tmp")
    out.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(args.out)
    print(f"{len(out)} rows for {out['user_id'].nunique()} members -> {args.out}")


if __name__ == "__main__":
    main()
