"""Throw-away TLS material for the emulator's API-SSL listener.

Real routers ship API-SSL either with anonymous Diffie-Hellman or with a certificate the
operator imported; clients in the field therefore usually skip verification. The emulator
generates a fresh self-signed certificate per process, which is enough for exercising the TLS
code path of a client without any files checked into the repository.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

COMMON_NAME = "sonjog-routeros-emulator"

_cache_lock = threading.Lock()
_cached_pem: tuple[bytes, bytes] | None = None


def generate_self_signed_pem(common_name: str = COMMON_NAME, days: int = 365) -> tuple[bytes, bytes]:
    """Return ``(certificate_pem, private_key_pem)`` for 127.0.0.1/localhost."""
    # P-256 keys are generated in microseconds, unlike RSA, which keeps test start-up fast.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Back-dated so a client with a slightly slow clock still sees it as valid.
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def write_self_signed(directory: Path, common_name: str = COMMON_NAME) -> tuple[Path, Path]:
    """Write a new certificate and key into ``directory``; return their paths."""
    cert_pem, key_pem = generate_self_signed_pem(common_name)
    cert_path = directory / "api-ssl.crt"
    key_path = directory / "api-ssl.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return cert_path, key_path


def _process_pem() -> tuple[bytes, bytes]:
    global _cached_pem
    with _cache_lock:
        if _cached_pem is None:
            _cached_pem = generate_self_signed_pem()
        return _cached_pem


def server_context() -> ssl.SSLContext:
    """An SSL server context with this process's self-signed certificate loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert_pem, key_pem = _process_pem()
    # The ssl module only loads certificates from files; keep them on disk just long enough.
    with tempfile.TemporaryDirectory(prefix="sonjog-routeros-tls-") as tmp:
        cert_path = Path(tmp) / "api-ssl.crt"
        key_path = Path(tmp) / "api-ssl.key"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


def insecure_client_context() -> ssl.SSLContext:
    """A client context that accepts the emulator's certificate, as field clients of API-SSL do."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
