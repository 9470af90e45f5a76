"""A second local broker with TLS and SASL listeners, and the certificates it needs.

The security settings (``kafka.security_protocol``, ``kafka.sasl_*``,
``kafka.ssl_*``) are only proven against a broker that enforces them, so this
broker adds, beside its plaintext listener (kept for the broker itself, the
readiness probe and the tests' own setup):

- ``SASL_SSL``: SCRAM-SHA-512 users written at format time (``--add-scram``),
  server-authenticated TLS;
- ``SSL``: mutual TLS, the client must show a certificate (``ssl.client.auth=required``).

The certificates are made here with ``cryptography`` (a dev dependency): a CA,
the broker's certificate for 127.0.0.1, a client certificate whose key is
encrypted, and a second CA the broker does not use, for the untrusted-CA tests.
Passwords are random per run so that a test can look for them in any output.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from streamproc.dev.localkafka import Listener, LocalKafka
from streamproc.dev.processes import free_ports

SCRAM = "SCRAM-SHA-512"
USER = "streamproc"
_DAYS = datetime.timedelta(days=2)


@dataclass(frozen=True)
class Pki:
    """PEM files for clients, and the broker's PKCS#12 keystore."""

    ca: Path
    """The CA that signed the broker and client certificates."""
    rogue_ca: Path
    """A CA that signed nothing the broker shows: trusting only it must fail."""
    client_cert: Path
    client_key: Path
    """Encrypted with :attr:`client_key_password`."""
    client_key_password: str
    keystore: Path
    keystore_password: str


@dataclass(frozen=True)
class SecureKafka:
    """The running secured broker and what a client needs to reach it."""

    broker: LocalKafka
    pki: Pki
    sasl_port: int
    mtls_port: int
    password: str
    """The SCRAM password of :data:`USER`."""

    def sasl_env(self, **overrides: str) -> dict[str, str]:
        """The documented settings for SASL_SSL with SCRAM-SHA-512."""
        return {
            "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.sasl_port}",
            "STREAMPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMPROC_KAFKA_SASL_MECHANISM": SCRAM,
            "STREAMPROC_KAFKA_SASL_USERNAME": USER,
            "STREAMPROC_KAFKA_SASL_PASSWORD": self.password,
            "STREAMPROC_KAFKA_SSL_CAFILE": str(self.pki.ca),
            **overrides,
        }

    def mtls_env(self, **overrides: str) -> dict[str, str]:
        """The documented settings for mutual TLS (a client certificate, no SASL)."""
        return {
            "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.mtls_port}",
            "STREAMPROC_KAFKA_SECURITY_PROTOCOL": "SSL",
            "STREAMPROC_KAFKA_SSL_CAFILE": str(self.pki.ca),
            "STREAMPROC_KAFKA_SSL_CERTFILE": str(self.pki.client_cert),
            "STREAMPROC_KAFKA_SSL_KEYFILE": str(self.pki.client_key),
            "STREAMPROC_KAFKA_SSL_PASSWORD": self.pki.client_key_password,
            **overrides,
        }

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every password of this setup: none may appear in any output."""
        pki = self.pki
        return (self.password, pki.client_key_password, pki.keystore_password)


def secure_broker(directory: Path) -> SecureKafka:
    """A configured, not yet started broker; its certificates are written to ``directory``."""
    pki = make_pki(directory)
    port, controller, sasl_port, mtls_port = free_ports(4)
    password = secrets.token_hex(16)
    broker = LocalKafka(
        port,
        controller,
        listeners=(Listener("SASL_SSL", "SASL_SSL", sasl_port), Listener("SSL", "SSL", mtls_port)),
        properties=broker_properties(pki),
        format_args=("--add-scram", f"{SCRAM}=[name={USER},password={password}]"),
    )
    return SecureKafka(broker, pki, sasl_port, mtls_port, password)


def broker_properties(pki: Pki) -> dict[str, str]:
    """TLS for both secured listeners; SCRAM on SASL_SSL; client certificates on SSL."""
    return {
        "sasl.enabled.mechanisms": SCRAM,
        f"listener.name.sasl_ssl.{SCRAM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.keystore),
        "ssl.keystore.password": pki.keystore_password,
        "ssl.key.password": pki.keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "listener.name.ssl.ssl.client.auth": "required",
    }


# --- certificates --------------------------------------------------------------------


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _ca("streamproc test CA")
    _, rogue = _ca("streamproc rogue CA")
    broker_key, broker = _leaf(ca_key, ca, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH)
    client_key, client = _leaf(ca_key, ca, USER, ExtendedKeyUsageOID.CLIENT_AUTH)
    key_password, store_password = secrets.token_hex(12), secrets.token_hex(12)
    pki = Pki(
        ca=directory / "ca.pem",
        rogue_ca=directory / "rogue-ca.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_key_password=key_password,
        keystore=directory / "broker.p12",
        keystore_password=store_password,
    )
    pki.ca.write_bytes(_pem(ca))
    pki.rogue_ca.write_bytes(_pem(rogue))
    pki.client_cert.write_bytes(_pem(client))
    pki.client_key.write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(key_password.encode()),
        )
    )
    # Legacy PBE: every JDK reads it; this keystore never leaves the test's temp dir.
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(store_password.encode())
    )
    pki.keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(b"broker", broker_key, broker, [ca], encryption)
    )
    return pki


Key = ec.EllipticCurvePrivateKey


def _ca(name: str) -> tuple[Key, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: Key, ca: x509.Certificate, name: str, usage: x509.ObjectIdentifier
) -> tuple[Key, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        _builder(subject, ca.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _builder(subject: x509.Name, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _DAYS)
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
