"""``python -m bench.cli_startup [--runs N]``: how long `headstart --help` takes, against a bare interpreter.

Runs, interleaved in the same loop so load affects both alike: the installed ``headstart --help``, ``python -c
pass`` (the floor: interpreter start-up), and ``python -c "import typer"`` (what any typer CLI pays). Prints
medians and what headstart adds over each; the last line is one JSON object. The target is < 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        print("error: --runs must be at least 1", file=sys.stderr)
        return 2
    headstart = shutil.which("headstart", path=os.path.dirname(sys.executable)) or shutil.which("headstart")
    if headstart is None:
        print("error: no `headstart` command beside this Python (pip install -e .)", file=sys.stderr)
        return 2
    commands = {"headstart --help": [headstart, "--help"], "python -c pass": [sys.executable, "-c", "pass"],
                "import typer": [sys.executable, "-c", "import typer"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        _time(command)  # warm the page cache
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(_time(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:18} median {value * 1000:7.1f} ms  (min {min(times[name]) * 1000:.1f} ms)")
    help_s = medians["headstart --help"]
    print(f"headstart adds {1000 * (help_s - medians['python -c pass']):.1f} ms over a bare interpreter, "
          f"{1000 * (help_s - medians['import typer']):.1f} ms over importing typer; load {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} CPUs")
    print(json.dumps({"runs": args.runs, "help_median_s": round(help_s, 4),
                      "python_median_s": round(medians["python -c pass"], 4),
                      "typer_median_s": round(medians["import typer"], 4),
                      "target_s": 0.2, "met": help_s < 0.2, "load": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
