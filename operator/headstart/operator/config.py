"""The operator's configuration: flags of ``python -m headstart.operator``, with environment defaults."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_TRAINER_IMAGE = "headstart-trainer:latest"


@dataclass(frozen=True)
class TrainerConfig:
    """What every training pod gets unless its spec says otherwise."""

    image: str = DEFAULT_TRAINER_IMAGE
    pull_policy: str = "IfNotPresent"
    keras_cache_claim: str | None = None
    """PVC (in the job's namespace) mounted at KERAS_HOME, shared by jobs: weights are downloaded once."""
    tfds_cache_claim: str | None = None
    """PVC mounted at TFDS_DATA_DIR: prepared TensorFlow Datasets shared by jobs."""
    run_as_user: int = 1000
    """The trainer image's non-root user (trainer/Dockerfile)."""


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    liveness_port: int = 8080
    metrics_port: int = 9090
    bind_address: str = "0.0.0.0"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    verbose: bool = False


class ConfigError(ValueError):
    """A bad flag or environment value; the message is one line naming it."""


def _port(name: str, value: int) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name}: {value} is not a port (0-65535; 0 turns it off)")
    return value


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python -m headstart.operator",
        description="The Headstart operator: turns FineTuneJobs into training Jobs and reports their status.")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    p.add_argument("--liveness-port", type=int, default=int(env("HEADSTART_LIVENESS_PORT", "8080")),
                   help="port of /healthz (0: off; default 8080)")
    p.add_argument("--metrics-port", type=int, default=int(env("HEADSTART_METRICS_PORT", "9090")),
                   help="port of the Prometheus /metrics (0: off; default 9090)")
    p.add_argument("--bind-address", default=env("HEADSTART_BIND_ADDRESS", "0.0.0.0"),
                   help="address the two ports listen on (default 0.0.0.0)")
    p.add_argument("--trainer-image", default=env("HEADSTART_TRAINER_IMAGE", DEFAULT_TRAINER_IMAGE),
                   help="trainer image for jobs without spec.image (env HEADSTART_TRAINER_IMAGE)")
    p.add_argument("--image-pull-policy", default=env("HEADSTART_IMAGE_PULL_POLICY", "IfNotPresent"),
                   help="imagePullPolicy of training pods: Always, IfNotPresent or Never")
    p.add_argument("--keras-cache-claim", default=env("HEADSTART_KERAS_CACHE_CLAIM") or None,
                   help="PVC mounted as KERAS_HOME in every training pod (shared weights cache)")
    p.add_argument("--tfds-cache-claim", default=env("HEADSTART_TFDS_CACHE_CLAIM") or None,
                   help="PVC mounted as TFDS_DATA_DIR in every training pod (shared datasets)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def from_args(args: argparse.Namespace) -> OperatorConfig:
    if args.image_pull_policy not in PULL_POLICIES:
        raise ConfigError(f"--image-pull-policy: {args.image_pull_policy!r} is not one of "
                          f"{', '.join(PULL_POLICIES)}")
    if not args.trainer_image.strip():
        raise ConfigError("--trainer-image: must not be empty")
    if not args.namespace and not args.all_namespaces:
        raise ConfigError("give --namespace NS (repeatable) or --all-namespaces")
    trainer = TrainerConfig(image=args.trainer_image, pull_policy=args.image_pull_policy,
                            keras_cache_claim=args.keras_cache_claim, tfds_cache_claim=args.tfds_cache_claim)
    return OperatorConfig(
        namespaces=tuple(args.namespace), all_namespaces=args.all_namespaces,
        liveness_port=_port("--liveness-port", args.liveness_port),
        metrics_port=_port("--metrics-port", args.metrics_port),
        bind_address=args.bind_address, trainer=trainer, verbose=args.verbose)
