"""A local certificate authority and a server certificate for 127.0.0.1, made with trustme.

Clients trust the sandboxes through the CA file (configuration), never by turning verification off.

For mutual TLS (the local API playing an API Gateway custom domain with a truststore), a client
certificate authority of its own issues client certificates: `create_client_ca(directory)` writes its CA
file (the truststore) and `ca.issue(...)` a client certificate and key a test presents.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class LocalTls:
    """PEM files of the local CA and of the server certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self, client_ca_file: Path | None = None) -> ssl.SSLContext:
        """An SSL context for a sandbox server presenting the local certificate.

        With `client_ca_file` (mutual TLS) the handshake fails unless the client presents a certificate
        that chains to a CA in that file.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=self.cert_file, keyfile=self.key_file)
        if client_ca_file is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(client_ca_file))
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that verifies servers against the local CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def create_local_tls(directory: Path, hosts: tuple[str, ...] = SERVER_HOSTS) -> LocalTls:
    """Generate a fresh CA and a server certificate for `hosts` into `directory` (ca.pem, server.pem, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="sfintacct local stack")
    certificate = ca.issue_cert(*hosts)
    tls = LocalTls(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
    )
    ca.cert_pem.write_to_path(str(tls.ca_file))
    tls.cert_file.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    _write_private(tls.key_file, certificate.private_key_pem.bytes())
    return tls


@dataclass(frozen=True)
class LocalClientCertificate:
    """PEM files of a client certificate (with its chain) and its key, for mutual TLS."""

    cert_file: Path
    key_file: Path

    def client_context(self, server_ca_file: Path) -> ssl.SSLContext:
        """An SSL context that verifies the server against `server_ca_file` and presents this certificate."""
        context = ssl.create_default_context(cafile=str(server_ca_file))
        context.load_cert_chain(certfile=self.cert_file, keyfile=self.key_file)
        return context


@dataclass
class LocalClientCa:
    """A certificate authority for client certificates; `ca_file` is what a truststore holds."""

    directory: Path
    ca_file: Path
    _ca: trustme.CA

    def issue(
        self,
        name: str,
        *,
        common_name: str,
        organization_name: str | None = None,
        organization_unit_name: str = "sfintacct local",
    ) -> LocalClientCertificate:
        """A client certificate with this subject (O, OU, CN), written to <name>.pem and <name>-key.pem
        (mode 600)."""
        leaf = self._ca.issue_cert(
            f"{name}.client.invalid",
            common_name=common_name,
            organization_name=organization_name,
            organization_unit_name=organization_unit_name,
        )
        certificate = LocalClientCertificate(
            cert_file=self.directory / f"{name}.pem", key_file=self.directory / f"{name}-key.pem"
        )
        certificate.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        _write_private(certificate.key_file, leaf.private_key_pem.bytes())
        return certificate


def create_client_ca(directory: Path, organization_name: str = "sfintacct local client CA") -> LocalClientCa:
    """A fresh client certificate authority; its certificate goes to <directory>/client-ca.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name=organization_name)
    ca_file = directory / "client-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return LocalClientCa(directory=directory, ca_file=ca_file, _ca=ca)


def _write_private(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    path.chmod(0o600)
