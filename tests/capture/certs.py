"""A throwaway CA with a server certificate for 127.0.0.1 and a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path
    other_client_key: Path

    def server_ssl(self) -> dict[str, Any]:
        """uvicorn's TLS settings for the server pair, requiring a client certificate of the CA."""
        return {
            "ssl_certfile": str(self.server_cert),
            "ssl_keyfile": str(self.server_key),
            "ssl_ca_certs": str(self.ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def certificate(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    ca: bool,
    alt_names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A certificate valid from five minutes ago for a day, signed with SHA-256."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def self_signed_ca(common: str, key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    return certificate(_name(common), key.public_key(), _name(common), key, ca=True)


def _issue(
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    *,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    if server:
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = certificate(
        _name(subject), key.public_key(), issuer, issuer_key, ca=False, alt_names=alt_names
    )
    return cert, key


def make_pki(directory: Path) -> Pki:
    """Write a CA, a server pair and two client pairs (one from another CA) as PEM files."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = self_signed_ca("kcheckpoint test CA", ca_key)
    server, server_key = _issue("127.0.0.1", ca_key, ca_cert.subject, server=True)
    client, client_key = _issue("ops", ca_key, ca_cert.subject)
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    other, other_key = _issue("mallory", rogue_ca_key, _name("rogue CA"))
    pem = serialization.Encoding.PEM
    pki = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        other_client_cert=directory / "other.pem",
        other_client_key=directory / "other-key.pem",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(pem))
    pki.server_cert.write_bytes(server.public_bytes(pem))
    pki.client_cert.write_bytes(client.public_bytes(pem))
    pki.other_client_cert.write_bytes(other.public_bytes(pem))
    _write_key(server_key, pki.server_key)
    _write_key(client_key, pki.client_key)
    _write_key(other_key, pki.other_client_key)
    return pki
