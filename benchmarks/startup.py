"""Benchmark: how long `mlops --help` and loading the Dagster code location take.

Each measurement is a fresh Python process (what a terminal command, the Dagster code server
and every run worker pay), timed from its start to its exit:
  * `mlops --help`: the CLI's entry point with `--help`;
  * code location: `import mlops_assets.definitions` (what `dagster dev` and the code server
    load before they can answer; Dagster times the load out after 60 s by default).
The two are interleaved round by round, so a change of machine load touches both alike.
Prints each one's median and range of wall time, the heavy libraries each process imported,
and the 1-minute load average before and after (the machine is shared: read the figures with
it). Targets: `mlops --help` within 1 s, the code location within 5 s.

    .venv/bin/python benchmarks/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HEAVY = ("dagster", "pandas", "feast", "mlflow", "bentoml", "xgboost", "sklearn")
REPORT = "import sys; print('heavy:' + ','.join(m for m in {heavy!r} if m in sys.modules))"
COMMANDS = {
    "mlops --help": (
        "import sys; from mlops_assets.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    ),
    "code location": "import mlops_assets.definitions\n",
}


def measure(code: str) -> tuple[float, str]:
    """Wall seconds of a fresh interpreter running `code`, and the heavy modules it loaded."""
    script = code + REPORT.format(heavy=HEAVY)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - started
    [heavy] = [line for line in done.stdout.splitlines() if line.startswith("heavy:")]
    return seconds, heavy.removeprefix("heavy:")


def main() -> None:
    """Interleave the measurements, then print medians and the load around them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    before = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    loaded: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, code in COMMANDS.items():
            seconds, modules = measure(code)
            times[name].append(seconds)
            loaded[name] = modules
    after = os.getloadavg()[0]
    print(f"load average (1 min): {before:.2f} before, {after:.2f} after; {os.cpu_count()} cores")
    for name, values in times.items():
        print(
            f"{name:<14} median {statistics.median(values):6.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} fresh processes); "
            f"heavy imports: {loaded[name] or 'none'}"
        )


if __name__ == "__main__":
    main()
