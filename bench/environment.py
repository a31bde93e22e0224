"""What a benchmark figure was measured on: CPUs, CPU model, bfloat16 units, load, GPUs."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def describe() -> dict:
    """nproc, the CPU model as lscpu names it, its bfloat16 flags and the load average (1, 5, 15 min) now
    (the flags as the trainer reads them to choose bfloat16)."""
    from headstart.trainer.runtime import cpu_flags

    flags = cpu_flags()
    return {"nproc": os.cpu_count(), "cpu": cpu_model(),
            "bf16_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
            "load_before": load()}
