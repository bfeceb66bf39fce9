"""The world a benchmark runs on: the sample, or one generated with a seed (`recsys generate`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def open_world(seed: int | None, tmp: str | Path):
    """(dataset, world, name): the sample when `seed` is None, else a world generated into `tmp`."""
    from recsys.data import load_dataset
    from recsys.data.loaders import sample_data_dir
    from recsys.data.synthetic import load_world

    if seed is None:
        folder, spec, name = sample_data_dir(), "sample", "sample"
    else:
        folder = Path(tmp) / f"world_seed{seed}"
        subprocess.run([sys.executable, "-m", "recsys.cli", "generate", "--seed", str(seed), "--out", str(folder)],
                       check=True, stdout=subprocess.DEVNULL)
        spec, name = f"parquet:{folder}", f"seed{seed}"
    return load_dataset(spec), load_world(folder), name
