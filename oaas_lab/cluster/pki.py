"""The cluster's certificates, keys and kubeconfigs: generated once per cluster, mode 0600.

One CA signs everything: the API server's serving certificate, the client certificates of the
controller manager, the scheduler, each kubelet (``system:node:<name>`` in ``system:nodes``,
what the Node authorizer expects), kube-proxy, the API server's client for kubelets, and the
admin. The service-account signing key is separate. Files are created by ``ensure`` only when
missing, so a second ``cluster up`` keeps every identity; ``cluster down --purge`` removes them.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from oaas_lab.cluster.topology import CLUSTER_DOMAIN, Topology

VALID_DAYS = 365
CA = "ca"
SERVICE_ACCOUNT = "sa"


@dataclass(frozen=True)
class Client:
    """A client identity: file stem, user (CN) and groups (O)."""

    stem: str
    user: str
    groups: tuple[str, ...] = ()


def clients(topology: Topology) -> list[Client]:
    """Every client identity of the cluster."""
    found = [
        Client("admin", "oaas-lab-admin", ("system:masters",)),
        Client("controller-manager", "system:kube-controller-manager"),
        Client("scheduler", "system:kube-scheduler"),
        Client("kube-proxy", "system:kube-proxy"),
        # the API server's identity towards kubelets (logs, exec, port-forward)
        Client("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
               ("system:masters",)),
    ]
    found += [Client(f"kubelet-{node.name}", f"system:node:{node.name}", ("system:nodes",))
              for node in topology.nodes]
    return found


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path} is not an EC key")
    return key


def _name(common: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common)])


class Pki:
    """The cluster's PKI directory (``<lab_dir>/cluster/pki``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def cert(self, stem: str) -> Path:
        return self.root / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.root / f"{stem}.key"

    def kubeconfig(self, stem: str) -> Path:
        return self.root / f"{stem}.kubeconfig"

    @property
    def sa_public(self) -> Path:
        return self.root / f"{SERVICE_ACCOUNT}.pub"

    def ensure(self, topology: Topology) -> list[str]:
        """Create whatever is missing; returns the stems it created."""
        created: list[str] = []
        if not self.cert(CA).is_file():
            self._ca()
            created.append(CA)
        if not self.key(SERVICE_ACCOUNT).is_file():
            sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write_private(self.key(SERVICE_ACCOUNT), _pem_key(sa))
            _write_private(self.sa_public, sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            created.append(SERVICE_ACCOUNT)
        if not self.cert("apiserver").is_file():
            self._issue("apiserver", _name("kube-apiserver"), server_names(topology),
                        server=True)
            created.append("apiserver")
        for client in clients(topology):
            if not self.kubeconfig(client.stem).is_file():
                self._issue(client.stem, _name(client.user, client.groups), [], server=False)
                self._write_kubeconfig(client.stem, client.user, topology.api_server)
                created.append(client.stem)
        return created

    def _ca(self) -> None:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        name = _name("oaas-lab-kubernetes-ca")
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=10 * VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.key(CA), _pem_key(key))
        _write_private(self.cert(CA), cert.public_bytes(serialization.Encoding.PEM))

    def _issue(self, stem: str, subject: x509.Name, names: list[str], *, server: bool) -> None:
        ca_key = _load_key(self.key(CA))
        ca_cert = x509.load_pem_x509_certificate(self.cert(CA).read_bytes())
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
        )
        if names:
            alt: list[x509.GeneralName] = []
            for entry in names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(entry)))
                except ValueError:
                    alt.append(x509.DNSName(entry))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_private(self.key(stem), _pem_key(key))
        _write_private(self.cert(stem), cert.public_bytes(serialization.Encoding.PEM))

    def _write_kubeconfig(self, stem: str, user: str, server: str) -> None:
        _write_private(self.kubeconfig(stem), kubeconfig_text(
            server=server, user=user, ca=self.cert(CA).read_bytes(),
            cert=self.cert(stem).read_bytes(), key=self.key(stem).read_bytes()).encode())


def server_names(topology: Topology) -> list[str]:
    """What the API server's certificate must be valid for: its node address, the
    ``kubernetes`` Service's address and names, and loopback inside its node."""
    service = "kubernetes.default.svc"
    return [topology.control_plane.ip, topology.kubernetes_service_ip, "127.0.0.1",
            "kubernetes", "kubernetes.default", service, f"{service}.{CLUSTER_DOMAIN}",
            "localhost"]


def kubeconfig_text(*, server: str, user: str, ca: bytes, cert: bytes, key: bytes,
                    cluster: str = "oaas-lab") -> str:
    """A kubeconfig with the credentials inline (one file to hand over, mode 0600)."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
    }
    return yaml.safe_dump(doc, sort_keys=False)
