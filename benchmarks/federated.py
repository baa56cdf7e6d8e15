"""Benchmark: federated XGBoost at 2 and 4 sites against the same training on pooled rows.

Generates N synthetic house sales (default 1,000,000), deals them to sites by location mix
(each site sells mostly one kind of house, as real sites differ), and trains:
  * pooled: all rows in one process, the platform's own central training;
  * federated: one process per site through XGBoost's federated server on loopback.
Same spec, split, parameters and fixed number of boosting rounds on both sides. Prints the wall
time and the test R² on the same test rows. (The bytes the sites exchange are not printed:
XGBoost does not report them, and a process's I/O counters miss the sockets its gRPC uses.)
Targets: federated <= 2x pooled time at 2 sites, R² within 0.005.

    .venv/bin/python benchmarks/federated.py [--rows 1000000] [--sites 2 4] [--rounds 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _site_folders(root: Path, rows: int, sites: int) -> dict[str, str]:
    from mlops_assets.sources import SyntheticConfig, generate_house_sales

    folders = {}
    for i in range(sites):
        mix = np.full(3, 0.1 / 2)
        mix[i % 3] = 0.9
        config = SyntheticConfig(
            rows=rows // sites,
            seed=1_000 + i,
            first_house_id=1 + i * 100_000_000,
            location_mix=tuple(mix),
        )
        folder = root / f"site_{i}"
        folder.mkdir(parents=True)
        generate_house_sales(config).to_parquet(folder / "sales.parquet")
        folders[f"site_{i}"] = str(folder)
    return folders


def _pooled(spec, folders: dict[str, str], params) -> tuple[float, float]:
    from mlops_assets.core.evaluation import compute_metrics
    from mlops_assets.core.features import engineer, to_matrix
    from mlops_assets.core.imputation import learn_imputation
    from mlops_assets.core.splits import entity_split
    from mlops_assets.core.training import predict, train
    from mlops_assets.federated.site_data import load_site_rows

    started = time.perf_counter()
    frame = pd.concat([load_site_rows(spec, s, loc) for s, loc in folders.items()])
    x = to_matrix(engineer(frame, spec, learn_imputation(frame, spec)), spec)
    y = frame[spec.target].to_numpy(dtype=np.float64)
    split = entity_split(frame[spec.entity_key].to_numpy(), spec.training.split.as_tuple())
    part = {name: np.flatnonzero(split == name) for name in ("train", "validation", "test")}
    model = train(
        x[part["train"]],
        y[part["train"]],
        x[part["validation"]],
        y[part["validation"]],
        spec,
        params,
    )
    seconds = time.perf_counter() - started
    r2 = compute_metrics(y[part["test"]], predict(model.booster, x[part["test"]]), spec.task)["r2"]
    return seconds, r2


def main() -> None:
    from mlops_assets.core.training import TrainParams
    from mlops_assets.federated.coordinator import train_federated
    from mlops_assets.spec import HOUSE_PRICES_SPEC, FederatedSettings, load_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--rounds", type=int, default=300, help="boosting rounds, both sides")
    args = parser.parse_args()
    spec = load_spec(HOUSE_PRICES_SPEC)
    # A fixed number of rounds (no early stopping) so both sides do the same work.
    params = TrainParams(
        learning_rate=0.1,
        max_rounds=args.rounds,
        early_stopping_rounds=args.rounds + 1,
        threads=os.cpu_count() or 1,
    )
    print(
        f"{args.rows:,} rows, {args.rounds} rounds, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for sites in args.sites:
            folders = _site_folders(Path(tmp) / f"{sites}-sites", args.rows, sites)
            pooled_s, pooled_r2 = _pooled(spec, folders, params)
            result = train_federated(
                spec, FederatedSettings(sites=folders), params, Path(tmp) / f"run-{sites}"
            )
            gain = result.pooled["r2"] - pooled_r2
            print(
                f"{sites} sites: pooled {pooled_s:6.1f} s  R² {pooled_r2:.4f} | federated "
                f"{result.seconds:6.1f} s  R² {result.pooled['r2']:.4f}  "
                f"({result.seconds / pooled_s:.2f}x time, ΔR² {gain:+.4f})"
            )


if __name__ == "__main__":
    main()
