"""`make cluster`: run the test control plane and a real node in the foreground.

    PYTHONPATH=tests .venv/bin/python -m controlplane [--kubeconfig PATH] [--no-node] [--images trainer,...] [--kueue]

Writes the admin kubeconfig once /readyz answers and the node is Ready, imports
the images named by --images (built here, cached), prints how to use it, and
stops the node and every component (reverse order) on Ctrl-C or SIGTERM, or
exits non-zero with the component's last log lines if one of them dies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from . import images
from .binaries import BinariesMissing
from .cluster import ControlPlane
from .kueue import Kueue, KueueBuildFailed
from .node import Node
from .nodeconfig import NODE_IP
from .processes import ComponentError, die_with_parent

_stop = threading.Event()
DEPLOY = Path("tests/controlplane/deploy")  # deploy/, with the Service at a fixed address (no cluster DNS here)
QUICKSTART = Path("examples/quickstart/cluster")
QUICKSTART_DATA = "/var/tmp/headstart-quickstart"  # the hostPath of examples/quickstart/cluster/storage.yaml
#: Without the in-cluster operator, the node's https://NODE_IP:8443 is relayed to this host's 127.0.0.1:8443,
#: where an operator started by hand (README, "Run the operator against make cluster") serves progress.
LOCAL_PROGRESS_PORT = 8443


def _deploy_operator(plane: ControlPlane, timeout: float = 180.0) -> None:
    """Install the operator from deploy/ (its images are imported and tagged as deploy/ names them); the
    certgen Job makes the progress endpoint's Secret first, and the operator's pod waits for it."""
    kubectl = [str(plane.bins["kubectl"]), f"--kubeconfig={plane.kubeconfig}"]
    steps = [
        [*kubectl, "apply", "-k", str(DEPLOY)],
        [*kubectl, "-n", "headstart-system", "rollout", "status", "deployment/headstart-operator",
         f"--timeout={int(timeout)}s"],
    ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
        if done.returncode != 0:
            raise ComponentError("operator", f"{' '.join(argv[2:])} failed: {done.stderr.strip()}", None)


def _interrupt(signum, _frame) -> None:
    # While starting: unwind through ControlPlane.start(), which stops what it began.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _on_signal(signum, _frame) -> None:
    _stop.set()


def _stop_all(plane: ControlPlane, node: Node | None, kueue: Kueue | None) -> None:
    if kueue is not None:
        kueue.stop()
    if node is not None:
        node.stop()
    plane.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=Path(".headstart/kubeconfig"),
                        help="where to write the admin kubeconfig (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=180.0,
                        help="seconds to wait for the control plane to be ready")
    parser.add_argument("--gpu-nodes", type=int, default=0,
                        help="fake nodes (no kubelet; tests move their pods by hand) (default: %(default)s)")
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--no-node", action="store_true", help="no real node (kubelet + containerd)")
    parser.add_argument("--node-gpus", type=int, default=4,
                        help="nvidia.com/gpu the real node advertises (default: %(default)s)")
    parser.add_argument("--images", default="trainer",
                        help="comma-separated images to build (cached) and import into the node: "
                             f"{', '.join(k for k in images.KINDS if k != 'pause')} (default: %(default)s)")
    parser.add_argument("--kueue", action="store_true",
                        help="Kueue's controller manager too (built from its Go module, cached; tests/kueue)")
    args = parser.parse_args(argv)
    wanted = [k for k in args.images.split(",") if k]
    unknown = [k for k in wanted if k not in images.KINDS]
    if unknown:
        parser.error(f"--images: unknown image {unknown[0]!r}; choose from {', '.join(images.KINDS)}")

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
    node = None if args.no_node else Node(plane, gpus=args.node_gpus)
    kueue = Kueue(plane) if args.kueue else None
    print("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler ...",
          flush=True)
    try:
        plane.start()
        if kueue is not None:
            print("starting Kueue (CRDs, webhooks, RBAC, its controller manager) ...", flush=True)
            kueue.start()
        loaded = []
        if node is not None:
            print("starting the node: containerd, kubelet, kube-proxy ...", flush=True)
            node.start()
            for kind in wanted:
                print(f"image {kind}: building (cached by input hash) and importing ...", flush=True)
                ref, archive = images.build(kind)
                node.load_image(archive, ref=ref, tags=images.DEFAULT_TAGS.get(kind, ()))
                loaded.append(ref)
            if "operator" in wanted:
                print("operator: kubectl apply -k deploy/ ...", flush=True)
                _deploy_operator(plane)
            else:  # an operator run here, on the host, serves its progress endpoint to the node's pods
                node.forward(LOCAL_PROGRESS_PORT)
    except (ComponentError, BinariesMissing, images.ImageBuildFailed, KueueBuildFailed) as exc:
        print(f"cluster failed to start:\n{exc}", file=sys.stderr)
        _stop_all(plane, node, kueue)
        return 1
    except KeyboardInterrupt:
        _stop_all(plane, node, kueue)
        print("interrupted during start; stopped.", file=sys.stderr)
        return 130
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    kubeconfig = args.kubeconfig.resolve()
    try:
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        nodes = [f"{n} (fake, nvidia.com/gpu: {args.gpus_per_node})" for n in plane.node_names]
        if node is not None:
            nodes.insert(0, f"{node.name} (real, ready in {node.start_seconds:.1f}s, nvidia.com/gpu: {node.gpus})")
        print(
            f"\ncontrol plane ready in {plane.start_seconds:.1f}s: {plane.server}\n"
            f"  nodes:  {', '.join(nodes) or 'none'}\n"
            + "".join(f"  image:  {ref} (imagePullPolicy: Never or IfNotPresent)\n" for ref in loaded)
            + (f"  kueue:  ready in {kueue.start_seconds:.1f}s (batch/v1 Jobs with a kueue.x-k8s.io/queue-name "
               "label; kubectl get clusterqueues,localqueues,workloads -A)\n" if kueue is not None else "")
            + f"  logs:   {plane.workdir / 'logs'}"
            + (f", {node.workdir / 'logs'}" if node is not None else "") + "\n\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  export PATH={plane.bin_dir}:$PATH   # kubectl {plane.bin_dir / 'kubectl'}\n"
            + ("  kubectl -n headstart-system get deploy headstart-operator   # running, from deploy/\n"
               if "operator" in wanted and node is not None else "  kubectl apply -f deploy/crds/\n")
            + (f"  pods reach an operator run here at https://{NODE_IP}:{LOCAL_PROGRESS_PORT} (relayed to "
               f"127.0.0.1:{LOCAL_PROGRESS_PORT})\n" if "operator" not in wanted and node is not None else "")
            + ("\n  the quickstart, trained in this cluster (examples/quickstart/README.md):\n"
               f"  {sys.executable} -m headstart.quickstart --prepare-only --workdir {QUICKSTART_DATA} --owner 1000\n"
               f"  kubectl apply -f {QUICKSTART}/ && kubectl get ftj -w\n" if QUICKSTART.is_dir() else "")
            + "\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        while not _stop.wait(1.0):
            plane.check_alive()
            if node is not None:
                node.check_alive()
            if kueue is not None:
                kueue.check_alive()
    except ComponentError as exc:
        print(f"cluster component died:\n{exc}", file=sys.stderr)
        return 1
    finally:
        if kueue is not None:
            print("stopping Kueue ...", flush=True)
            kueue.stop()
        if node is not None:
            print("stopping the node ...", flush=True)
            node.stop()
        print("stopping control plane ...", flush=True)
        plane.stop()
        kubeconfig.unlink(missing_ok=True)
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
