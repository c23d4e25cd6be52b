"""Bootstrap AUC intervals: hepml.evaluate.roc against a bare resample-and-sort loop.

Both compute the AUC of the same ``--n-boot`` resamples (indices drawn from the
same seed) of ``--n`` candidates; the bare loop re-sorts every resample with
``sklearn.metrics.roc_auc_score``. Prints the seconds of each, checks the two
agree, and ends with ``ratio <bare seconds / hepml seconds>`` (higher is better).

    python benchmarks/roc_bootstrap.py --n 1000000 --n-boot 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from hepml.evaluate import roc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="candidates")
    p.add_argument("--n-boot", type=int, default=100, help="bootstrap resamples")
    args = p.parse_args()
    data = np.random.default_rng(1)
    y = data.random(args.n) < 0.3
    s = data.normal(size=args.n) + 1.0 * y

    t0 = time.perf_counter()
    fast = roc.bootstrap_roc(y, {"m": s}, n_boot=args.n_boot, rng=np.random.default_rng(2))["m"]
    t_fast = time.perf_counter() - t0

    rng = np.random.default_rng(2)  # the same resamples, one at a time
    chunk = max(1, min(args.n_boot, roc._CHUNK_ELEMENTS // args.n))
    bare = []
    t0 = time.perf_counter()
    for b0 in range(0, args.n_boot, chunk):
        for idx in rng.integers(0, args.n, size=(min(chunk, args.n_boot - b0), args.n)):
            bare.append(roc_auc_score(y[idx], s[idx]))
    t_bare = time.perf_counter() - t0

    diff = float(np.max(np.abs(np.asarray(bare) - fast.boot_auc)))
    print(f"n {args.n} n_boot {args.n_boot}")
    print(
        f"hepml   {t_fast:.2f} s  AUC {fast.auc:.5f} [{fast.auc_ci95[0]:.5f}, {fast.auc_ci95[1]:.5f}]"
    )
    print(
        f"bare    {t_bare:.2f} s  AUC interval [{np.percentile(bare, 2.5):.5f}, {np.percentile(bare, 97.5):.5f}]"
    )
    print(f"max |replica AUC difference| {diff:.2e}")
    print(f"ratio {t_bare / t_fast:.2f}")


if __name__ == "__main__":
    main()
