"""The operator's configuration: flags of ``python -m headstart.operator``, with environment defaults."""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass, field

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_TRAINER_IMAGE = "headstart-trainer:latest"
DEFAULT_PROGRESS_URL = "https://headstart-operator.headstart-system.svc:8443"
TLS_DIR = "/etc/headstart/tls"


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
    progress_url: str | None = None
    """Base URL of the operator's progress endpoint as training pods reach it (None: no progress endpoint;
    pods then report only through their termination message)."""
    progress_ca: str | None = None
    """PEM of the CA that signed the endpoint's certificate, which training pods trust."""


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    liveness_port: int = 8080
    metrics_port: int = 9090
    progress_port: int = 8443
    resync_seconds: float = 60.0
    bind_address: str = "0.0.0.0"
    tls_cert_file: str = f"{TLS_DIR}/tls.crt"
    tls_key_file: str = f"{TLS_DIR}/tls.key"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    verbose: bool = False


class ConfigError(ValueError):
    """A bad flag or environment value; the message is one line naming it."""


def parser() -> argparse.ArgumentParser:
    """The flags; environment defaults are strings here and checked in :func:`from_args`."""
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python -m headstart.operator",
        description="The Headstart operator: turns FineTuneJobs into training Jobs and reports their status.")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    p.add_argument("--liveness-port", default=env("HEADSTART_LIVENESS_PORT", "8080"),
                   help="port of /healthz (0: off; default 8080)")
    p.add_argument("--metrics-port", default=env("HEADSTART_METRICS_PORT", "9090"),
                   help="port of the Prometheus /metrics (0: off; default 9090)")
    p.add_argument("--progress-port", default=env("HEADSTART_PROGRESS_PORT", "8443"),
                   help="HTTPS port where training pods post their progress (0: off; default 8443)")
    p.add_argument("--resync-seconds", default=env("HEADSTART_RESYNC_SECONDS", "60"),
                   help="every job is reconciled again this often, whatever happened (default 60)")
    p.add_argument("--bind-address", default=env("HEADSTART_BIND_ADDRESS", "0.0.0.0"),
                   help="address the ports listen on (default 0.0.0.0)")
    p.add_argument("--progress-url", default=env("HEADSTART_PROGRESS_URL", DEFAULT_PROGRESS_URL),
                   help="the progress endpoint as training pods reach it (default: the Service in deploy/, "
                        f"{DEFAULT_PROGRESS_URL})")
    p.add_argument("--tls-cert-file", default=env("HEADSTART_TLS_CERT_FILE", f"{TLS_DIR}/tls.crt"),
                   help="the progress endpoint's serving certificate (PEM)")
    p.add_argument("--tls-key-file", default=env("HEADSTART_TLS_KEY_FILE", f"{TLS_DIR}/tls.key"),
                   help="its private key (PEM)")
    p.add_argument("--tls-ca-file", default=env("HEADSTART_TLS_CA_FILE", f"{TLS_DIR}/ca.crt"),
                   help="the CA training pods check the certificate against (PEM)")
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


def _port(name: str, value: str | int) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a port (0-65535; 0 turns it off)") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: {port} is not a port (0-65535; 0 turns it off)")
    return port


def _seconds(name: str, value: str | float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a number of seconds") from None
    if not 1 <= seconds <= 86400:
        raise ConfigError(f"{name}: {seconds:g} is not between 1 and 86400 seconds")
    return seconds


def _read_pem(flag: str, path: str) -> str:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{flag}: cannot read {path}: {reason} (make one with `python -m "
                          "headstart.operator.certs`, or --progress-port 0 to run without the endpoint)") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{flag}: {path} holds no PEM certificate")
    return text


def _check_key(cert_file: str, key_file: str) -> None:
    """The certificate and its key load together (said at start, not by the first pod that posts)."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(f"--tls-key-file: {key_file} is not the key of {cert_file}, or unreadable: "
                          f"{reason}") from None


def from_args(args: argparse.Namespace) -> OperatorConfig:
    if args.image_pull_policy not in PULL_POLICIES:
        raise ConfigError(f"--image-pull-policy: {args.image_pull_policy!r} is not one of "
                          f"{', '.join(PULL_POLICIES)}")
    if not args.trainer_image.strip():
        raise ConfigError("--trainer-image: must not be empty")
    if not args.namespace and not args.all_namespaces:
        raise ConfigError("give --namespace NS (repeatable) or --all-namespaces")
    liveness_port = _port("--liveness-port", args.liveness_port)
    metrics_port = _port("--metrics-port", args.metrics_port)
    progress_port = _port("--progress-port", args.progress_port)
    resync_seconds = _seconds("--resync-seconds", args.resync_seconds)
    progress_url = progress_ca = None
    if progress_port:
        if not args.progress_url.startswith("https://"):
            raise ConfigError(f"--progress-url: {args.progress_url!r} must be an https:// URL")
        progress_url = args.progress_url
        _read_pem("--tls-cert-file", args.tls_cert_file)
        progress_ca = _read_pem("--tls-ca-file", args.tls_ca_file)
        _check_key(args.tls_cert_file, args.tls_key_file)
    trainer = TrainerConfig(image=args.trainer_image, pull_policy=args.image_pull_policy,
                            keras_cache_claim=args.keras_cache_claim, tfds_cache_claim=args.tfds_cache_claim,
                            progress_url=progress_url, progress_ca=progress_ca)
    return OperatorConfig(
        namespaces=tuple(args.namespace), all_namespaces=args.all_namespaces,
        liveness_port=liveness_port, metrics_port=metrics_port, progress_port=progress_port,
        resync_seconds=resync_seconds,
        bind_address=args.bind_address, tls_cert_file=args.tls_cert_file, tls_key_file=args.tls_key_file,
        trainer=trainer, verbose=args.verbose)
