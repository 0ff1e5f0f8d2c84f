"""HTTPS for the Salesforce sandbox: simple-salesforce always rewrites ``instance_url`` to ``https://``, so the
sandbox must speak TLS to be used with it. :func:`certificate` makes (once per process) a throw-away CA and
a server certificate for ``127.0.0.1`` / ``localhost``; :class:`TLSServerThread` serves an app with it.

    with TLSServerThread(app) as server:
        session = requests.Session(); session.trust_env = False; session.verify = server.ca_file
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from renkei.sandboxes.common import ServerThread, _uvicorn_config

_LOCK = threading.Lock()
_CERT: "Certificate | None" = None


@dataclass(frozen=True)
class Certificate:
    ca_file: str  # PEM of the CA to trust
    cert_file: str  # server certificate chain
    key_file: str  # server private key


def certificate() -> Certificate:
    """A CA and a server certificate for 127.0.0.1 / ::1 / localhost, written to a temporary folder."""
    global _CERT
    with _LOCK:
        if _CERT is not None and Path(_CERT.cert_file).exists():
            return _CERT
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = dt.datetime.now(dt.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Renkei sandbox CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
              .not_valid_after(now + dt.timedelta(days=30))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        folder = Path(tempfile.mkdtemp(prefix="renkei-sf-tls-"))
        pem = serialization.Encoding.PEM
        (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
        (folder / "server.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
        (folder / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
        (folder / "server.key").chmod(0o600)
        _CERT = Certificate(str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key"))
        return _CERT


class TLSServerThread(ServerThread):
    """:class:`ServerThread` over HTTPS (``url`` is ``https://127.0.0.1:<port>``; trust ``ca_file``)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 cert: Certificate | None = None) -> None:
        super().__init__(app, host, port, log_level)
        self.cert = cert or certificate()
        cfg = _uvicorn_config(app, host, self.port, log_level)
        cfg.ssl_certfile, cfg.ssl_keyfile = self.cert.cert_file, self.cert.key_file
        self._server = uvicorn.Server(cfg)

    @property
    def ca_file(self) -> str:
        return self.cert.ca_file

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"
