"""``python -m headstart.operator.certs``: the progress endpoint's CA and serving certificate.

    python -m headstart.operator.certs --out DIR --host 10.0.0.5 --host op.example   # files: ca.crt, tls.crt, tls.key
    python -m headstart.operator.certs --secret headstart-operator-tls -n headstart-system \\
        --host headstart-operator.headstart-system.svc                                 # a Secret, made once

The second form is what deploy/'s one-shot Job runs (as ingress-nginx's certgen does for its webhook): it
creates the ``kubernetes.io/tls`` Secret (with ``ca.crt``) that the operator's Deployment mounts, and leaves
an existing one as it is, so every operator restart serves the same certificate and the pods that trust
its CA keep reporting. The operator itself never reads Secrets.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = 3650


@dataclass(frozen=True)
class Bundle:
    """PEM texts: the CA's certificate, the serving certificate and its key."""

    ca: str
    cert: str
    key: str


def _name(common: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(hosts: list[str]):
    from cryptography import x509

    entries = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def make_bundle(hosts: list[str], days: int = VALID_DAYS) -> Bundle:
    """A new CA and a serving certificate it signed for ``hosts`` (DNS names or IP addresses)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not hosts:
        raise ValueError("give at least one --host")
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("headstart-progress-ca")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until).add_extension(_san(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Bundle(ca=ca.public_bytes(pem).decode(), cert=cert.public_bytes(pem).decode(),
                  key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode())


def write_files(bundle: Bundle, out: Path) -> None:
    """ca.crt, tls.crt and tls.key (0600) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.crt").write_text(bundle.ca)
    (out / "tls.crt").write_text(bundle.cert)
    key = out / "tls.key"
    key.touch(mode=0o600, exist_ok=True)
    key.chmod(0o600)
    key.write_text(bundle.key)


def ensure_secret(namespace: str, name: str, hosts: list[str]) -> bool:
    """Create the TLS Secret unless it exists; True when it was created. In-cluster credentials (the
    certgen Job's own ServiceAccount: create secrets, get this one), else KUBECONFIG."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    core = client.CoreV1Api()
    try:
        core.read_namespaced_secret(name, namespace)
        return False
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    bundle = make_bundle(hosts)
    data = {"ca.crt": bundle.ca, "tls.crt": bundle.cert, "tls.key": bundle.key}
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/name": "headstart",
                                                        "app.kubernetes.io/component": "operator"}),
        type="kubernetes.io/tls", data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
    try:
        core.create_namespaced_secret(namespace, secret)
    except client.ApiException as exc:
        if exc.status == 409:  # made meanwhile by another run: that one stands
            return False
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m headstart.operator.certs", description=__doc__.splitlines()[0])
    p.add_argument("--host", action="append", default=[], required=True,
                   help="a DNS name or IP address the certificate serves (repeatable)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="write ca.crt, tls.crt and tls.key into this folder")
    where.add_argument("--secret", help="create this kubernetes.io/tls Secret unless it exists")
    p.add_argument("-n", "--namespace", default="headstart-system", help="the Secret's namespace")
    args = p.parse_args(argv)
    try:
        if args.out is not None:
            write_files(make_bundle(args.host), args.out)
            print(f"wrote {args.out}/ca.crt, tls.crt, tls.key")
        elif ensure_secret(args.namespace, args.secret, args.host):
            print(f"created Secret {args.namespace}/{args.secret}")
        else:
            print(f"Secret {args.namespace}/{args.secret} exists: kept")
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
