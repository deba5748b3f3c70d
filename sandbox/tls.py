"""A local certificate authority and a server certificate for 127.0.0.1, made with trustme.

Clients trust the sandboxes through the CA file (configuration), never by turning verification off.
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

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for a sandbox server presenting the local certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=self.cert_file, keyfile=self.key_file)
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


def _write_private(path: Path, content: bytes) -> None:
    """Write a file readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    path.chmod(0o600)
