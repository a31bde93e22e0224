"""PKI for the test control plane, generated with `cryptography`.

One throw-away CA signs:
  * a serving certificate for the loopback servers (kube-apiserver,
    kube-controller-manager, kube-scheduler),
  * one client certificate per identity (admin, controller-manager, scheduler,
    the API server's own identity towards kubelets), whose CN/O are the user and
    groups the RBAC and Node authorizers see;
  * for a real node (node.py), later, from the same CA kept on disk: the
    kubelet's client (system:node:NAME in system:nodes) and serving certificates
    and kube-proxy's client certificate (:func:`issue`).
The service-account signing key pair is separate and not a certificate.
Everything is written as PEM under one directory and lives only as long as it.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: First address of --service-cluster-ip-range: the in-cluster `kubernetes` Service.
SERVICE_IP = "10.0.0.1"
#: The API server's address inside a node's network namespace (nodenet.NODE_IP), where
#: kubelet, kube-proxy and the `kubernetes` Service's endpoint reach it.
NODE_SIDE_IP = "10.245.0.1"
SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
_VALIDITY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the control plane needs."""

    ca: CertPair
    serving: CertPair
    admin: CertPair
    controller_manager: CertPair
    scheduler: CertPair
    kubelet_client: CertPair  # the API server's identity towards kubelets (logs, exec)
    sa_public: Path
    sa_private: Path


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signatures for every certificate; certificate and CRL signing for the CA alone."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=signs_certificates, crl_sign=signs_certificates,
        encipher_only=False, decipher_only=False,
    )


class _Ca:
    def __init__(self, cert: x509.Certificate | None = None, key=None) -> None:
        if cert is not None:
            self.key, self.name, self.cert = key, cert.subject, cert
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name("headstart-test-ca")
        self.cert = (
            _builder(self.name, self.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        cn: str,
        *,
        orgs: tuple[str, ...] = (),
        server: bool = False,
        ips: tuple[str, ...] = ("127.0.0.1", SERVICE_IP, NODE_SIDE_IP),
        dns: tuple[str, ...] = SERVING_DNS,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(cn, orgs), self.name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def _save(directory: Path, stem: str, cert: x509.Certificate, key) -> CertPair:
    return CertPair(
        cert=_write(directory / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM)),
        key=_write(directory / f"{stem}.key", _key_pem(key)),
    )


def generate(directory: Path) -> Pki:
    """Create a fresh CA, leaf certificates and service-account keys in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _Ca()
    ca_pair = _save(directory, "ca", ca.cert, ca.key)
    serving = _save(directory, "serving", *ca.issue("headstart-loopback", server=True))
    # system:masters is the built-in break-glass group, as envtest's admin user uses.
    admin = _save(directory, "admin", *ca.issue("headstart-admin", orgs=("system:masters",)))
    # These two user names are bound by the apiserver's bootstrap RBAC policy
    # to their least-privilege ClusterRoles.
    kcm = _save(directory, "kube-controller-manager", *ca.issue("system:kube-controller-manager"))
    sched = _save(directory, "kube-scheduler", *ca.issue("system:kube-scheduler"))
    # Bound to system:kubelet-api-admin when a node starts (node.py); kubelets authorize it by webhook.
    kubelet_client = _save(directory, "kube-apiserver-kubelet-client", *ca.issue(KUBELET_CLIENT_USER))

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_private = _write(directory / "sa.key", _key_pem(sa_key))
    sa_public = _write(
        directory / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return Pki(
        ca=ca_pair,
        serving=serving,
        admin=admin,
        controller_manager=kcm,
        scheduler=sched,
        kubelet_client=kubelet_client,
        sa_public=sa_public,
        sa_private=sa_private,
    )


def issue(
    directory: Path,
    stem: str,
    cn: str,
    *,
    orgs: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    server_dns: tuple[str, ...] = (),
) -> CertPair:
    """Sign one more certificate with the CA that :func:`generate` left in `directory`.

    With `server_ips`/`server_dns` it is a serving certificate for those names (a
    kubelet's), otherwise a client certificate for user `cn` in groups `orgs`."""
    ca = _Ca(
        x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes()),
        serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None),
    )
    server = bool(server_ips or server_dns)
    if server:
        cert, key = ca.issue(cn, orgs=orgs, server=True, ips=server_ips, dns=server_dns)
    else:
        cert, key = ca.issue(cn, orgs=orgs)
    return _save(directory, stem, cert, key)
