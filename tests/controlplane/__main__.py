"""`make cluster`: run the test control plane in the foreground.

    PYTHONPATH=tests .venv/bin/python -m controlplane [--kubeconfig PATH]

Writes the admin kubeconfig once /readyz answers, prints how to use it, and
stops every component (reverse order) on Ctrl-C or SIGTERM, or exits non-zero
with the component's last log lines if one of them dies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from .binaries import BinariesMissing
from .cluster import ControlPlane
from .processes import ComponentError, die_with_parent

_stop = threading.Event()


def _interrupt(signum, _frame) -> None:
    # While starting: unwind through ControlPlane.start(), which stops what it began.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _on_signal(signum, _frame) -> None:
    _stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=Path(".headstart/kubeconfig"),
                        help="where to write the admin kubeconfig (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=180.0,
                        help="seconds to wait for the control plane to be ready")
    parser.add_argument("--gpu-nodes", type=int, default=2)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    # `make cluster` is our parent; a SIGTERM to make ends make without
    # forwarding it, so ask the kernel to send us SIGTERM when make goes.
    parent = os.getppid()
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:
        return 1
    plane = ControlPlane(start_timeout=args.start_timeout,
                         gpu_nodes=args.gpu_nodes, gpus_per_node=args.gpus_per_node)
    print("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler ...",
          flush=True)
    try:
        plane.start()
    except (ComponentError, BinariesMissing) as exc:
        print(f"control plane failed to start:\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted during start; stopped.", file=sys.stderr)
        return 130
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    kubeconfig = args.kubeconfig.resolve()
    try:
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        print(
            f"\ncontrol plane ready in {plane.start_seconds:.1f}s: {plane.server}\n"
            f"  nodes: {', '.join(plane.node_names)} (nvidia.com/gpu: {args.gpus_per_node} each)\n"
            f"  logs:  {plane.workdir / 'logs'}\n\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  export PATH={plane.bin_dir}:$PATH   # kubectl {plane.bin_dir / 'kubectl'}\n"
            f"  kubectl apply -f deploy/crds/\n\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        while not _stop.wait(1.0):
            plane.check_alive()
    except ComponentError as exc:
        print(f"control plane component died:\n{exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping control plane ...", flush=True)
        plane.stop()
        kubeconfig.unlink(missing_ok=True)
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
