"""Kueue's own manifests, from its module zip, made to fit the test cluster (pure: files in, objects out).

The module's config (copied into the build cache by tests/kueue/build.sh) is written for a pod behind a
Service; here Kueue is a process on 127.0.0.1, so:

* webhook configurations: Kueue's own (config/components/webhook/manifests.yaml), only those for Kueue's
  API and batch/v1 Jobs (the one framework it manages here), each called by URL on 127.0.0.1:<port> with
  the CA below, under the names Kueue's certificate manager looks for (``kueue-*-webhook-configuration``);
* CRDs (config/components/crd/bases) with the conversion webhooks Kueue's kustomization adds, by URL too;
* RBAC: the module's manager ClusterRole and secrets Role (config/components/rbac), bound to Kueue's user;
* certificates: a CA of Kueue's own as its internal certificate manager (cert-controller) accepts and
  keeps (an RSA key, the name ``kueue-ca``, valid past its 90-day look-ahead) and a serving certificate for
  127.0.0.1 and the webhook Service's name, in the Secret the manager reads.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMESPACE = "kueue-system"
SERVICE = "kueue-webhook-service"
SECRET = "kueue-webhook-server-cert"
USER = "kueue-controller-manager"
MUTATING = "kueue-mutating-webhook-configuration"
VALIDATING = "kueue-validating-webhook-configuration"
#: The CRDs whose conversion webhook Kueue's kustomization enables (and its certificate manager fills).
CONVERTED = ("localqueues", "clusterqueues", "workloads", "cohorts", "multikueueclusters")
GROUP = "kueue.x-k8s.io"
#: What the webhooks kept here admit: Kueue's own API and batch/v1 Jobs.
SERVED_GROUPS = {GROUP, "batch"}
_VALIDITY = datetime.timedelta(days=365)  # cert-controller renews anything that expires within 90 days


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_dir: Path) -> None:
        """The webhook server's files, as a pod mounting the Secret would have them."""
        cert_dir.mkdir(parents=True, exist_ok=True)
        for name, data in (("tls.crt", self.cert_pem), ("tls.key", self.key_pem), ("ca.crt", self.ca_pem)):
            (cert_dir / name).write_bytes(data)
            (cert_dir / name).chmod(0o600)

    def secret(self) -> dict[str, Any]:
        data = {"ca.crt": self.ca_pem, "ca.key": self.ca_key_pem, "tls.crt": self.cert_pem, "tls.key": self.key_pem}
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": SECRET, "namespace": NAMESPACE},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def make_pki() -> Pki:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kueue"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "kueue-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + _VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectAlternativeName([x509.DNSName("kueue-ca")]), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    dns = f"{SERVICE}.{NAMESPACE}.svc"
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(dns), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Pki(
        ca_pem=ca.public_bytes(pem),
        # cert-controller reads the CA key as PKCS#1 ("RSA PRIVATE KEY")
        ca_key_pem=ca_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()),
        cert_pem=cert.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def crds(dist: Path, url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """Kueue's CRDs; the converted ones call ``url``/convert with ``ca_pem``."""
    out = []
    for path in sorted((dist / "crds").glob("*.yaml")):
        for crd in _load_all(path):
            if crd["spec"]["names"]["plural"] in CONVERTED:
                crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
                    "clientConfig": {"url": f"{url}/convert", "caBundle": base64.b64encode(ca_pem).decode()},
                    "conversionReviewVersions": ["v1"]}}
            out.append(crd)
    return out


def _served(hook: dict[str, Any]) -> bool:
    groups = {g for rule in hook.get("rules") or [] for g in rule.get("apiGroups") or []}
    return bool(groups) and groups <= SERVED_GROUPS


def webhooks(dist: Path, url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """Kueue's mutating and validating webhook configurations for its API and Jobs, by URL."""
    names = {"MutatingWebhookConfiguration": MUTATING, "ValidatingWebhookConfiguration": VALIDATING}
    out = []
    for config in _load_all(dist / "config" / "webhooks.yaml"):
        config["metadata"] = {"name": names[config["kind"]]}
        kept = []
        for hook in config.get("webhooks") or []:
            if not _served(hook):
                continue
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": base64.b64encode(ca_pem).decode()}
            hook["timeoutSeconds"] = 10
            kept.append(hook)
        config["webhooks"] = kept
        out.append(config)
    return out


def rbac(dist: Path) -> list[dict[str, Any]]:
    """The module's manager ClusterRole and secrets Role, and bindings to Kueue's user."""
    role = _load_all(dist / "config" / "role.yaml")[0]
    role["metadata"] = {"name": "kueue-manager-role"}
    secrets = _load_all(dist / "config" / "secrets-role.yaml")[0]
    secrets["metadata"] = {"name": "kueue-manager-secrets-role", "namespace": NAMESPACE}
    subject = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]

    def ref(kind: str, name: str) -> dict[str, str]:
        return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}

    return [
        role, secrets,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "kueue-manager-rolebinding"}, "roleRef": ref("ClusterRole", role["metadata"]["name"]),
         "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "kueue-manager-secrets-rolebinding", "namespace": NAMESPACE},
         "roleRef": ref("Role", secrets["metadata"]["name"]), "subjects": subject},
    ]


def configuration(health_port: int, webhook_port: int, cert_dir: Path) -> dict[str, Any]:
    """Kueue's Configuration: batch/v1 Jobs only, queued by their queue-name label; no leader election;
    its internal certificate manager on (it keeps the Secret made here); every port on 127.0.0.1."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": True, "webhookServiceName": SERVICE, "webhookSecretName": SECRET},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": ["batch/job"]},
        "controller": {"groupKindConcurrency": {"Job.batch": 5, "Workload.kueue.x-k8s.io": 5,
                                                "LocalQueue.kueue.x-k8s.io": 1, "ClusterQueue.kueue.x-k8s.io": 1,
                                                "ResourceFlavor.kueue.x-k8s.io": 1}},
    }


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)
