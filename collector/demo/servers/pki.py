"""A test PKI: the lab CA that the probe trusts, a rogue CA it does not, and leaf certificates.

Everything lives in one directory so that servers in several processes (one per network
namespace in the lab) present certificates from the same CA:

    DIR/lab-ca.pem, DIR/lab-ca.key       the lab CA (give ``lab-ca.pem`` to ``--ca-file``)
    DIR/rogue-ca.pem, DIR/rogue-ca.key   the rogue CA, for MITM
    DIR/leaves/ISSUER-HASH.pem, .key     leaf chains and keys, written on demand

``PKI(DIR)`` creates the CAs on first use and loads them afterwards (under a file lock, so
concurrent processes agree). Keys are EC P-256; leaves of one ``PKI`` share one key, which is
fine for a lab and keeps issuing cheap.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Issuer = Literal["lab", "rogue"]

LAB_CA_NAME: Final = "censorwatch Lab CA"
ROGUE_CA_NAME: Final = "censorwatch Rogue CA"
_CA_NAMES: Final[dict[Issuer, str]] = {"lab": LAB_CA_NAME, "rogue": ROGUE_CA_NAME}
_CA_LIFETIME: Final = dt.timedelta(days=3650)
_LEAF_LIFETIME: Final = dt.timedelta(days=365)
_BACKDATE: Final = dt.timedelta(days=1)


@dataclass(frozen=True)
class LeafFiles:
    """PEM files for a server: ``chain`` holds the leaf then its CA; ``key`` its private key."""

    chain: Path
    key: Path
    names: tuple[str, ...]
    issuer: Issuer


@dataclass(frozen=True)
class Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


class PKI:
    """The lab's certificate authorities and the leaves issued from them, kept in ``directory``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        (self.directory / "leaves").mkdir(parents=True, exist_ok=True)
        with _locked(self.directory / ".lock"):
            self.lab = _load_or_create(self.directory, "lab")
            self.rogue = _load_or_create(self.directory, "rogue")
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        self._leaves: dict[tuple[Issuer, tuple[str, ...]], LeafFiles] = {}
        self._contexts: dict[tuple[Issuer, tuple[str, ...]], ssl.SSLContext] = {}

    @property
    def ca_file(self) -> Path:
        """The lab CA bundle: what the probe's ``--ca-file`` takes."""
        return self.directory / "lab-ca.pem"

    @property
    def rogue_ca_file(self) -> Path:
        return self.directory / "rogue-ca.pem"

    def leaf(self, names: Sequence[str], issuer: Issuer = "lab") -> LeafFiles:
        """Certificate files for DNS names and/or IP addresses, issued once per PKI."""
        key = (issuer, tuple(names))
        if key not in self._leaves:
            self._leaves[key] = self._write_leaf(key[1], issuer)
        return self._leaves[key]

    def server_context(self, names: Sequence[str], issuer: Issuer = "lab") -> ssl.SSLContext:
        """A server-side TLS context presenting a leaf for ``names``."""
        key = (issuer, tuple(names))
        if key not in self._contexts:
            files = self.leaf(names, issuer)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.chain, files.key)
            self._contexts[key] = context
        return self._contexts[key]

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts the lab CA only, with hostname checks on."""
        return ssl.create_default_context(cafile=self.ca_file)

    def _write_leaf(self, names: tuple[str, ...], issuer: Issuer) -> LeafFiles:
        if not names:
            raise ValueError("a leaf certificate needs at least one name or address")
        authority = self.lab if issuer == "lab" else self.rogue
        certificate = _issue(authority, self._leaf_key, names)
        # The leaf key is part of the file name: another process's PKI has its own key.
        public = self._leaf_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.sha256(public + "\n".join(names).encode()).hexdigest()[:16]
        stem = self.directory / "leaves" / f"{issuer}-{digest}"
        chain = certificate.public_bytes(serialization.Encoding.PEM) + authority.pem
        _write_atomically(stem.with_suffix(".pem"), chain)
        _write_atomically(stem.with_suffix(".key"), _key_pem(self._leaf_key))
        return LeafFiles(stem.with_suffix(".pem"), stem.with_suffix(".key"), names, issuer)


def _load_or_create(directory: Path, issuer: Issuer) -> Authority:
    cert_path = directory / f"{issuer}-ca.pem"
    key_path = directory / f"{issuer}-ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not an EC private key")
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return Authority(_CA_NAMES[issuer], key, certificate)
    authority = _create_authority(_CA_NAMES[issuer])
    _write_atomically(key_path, _key_pem(authority.key))
    _write_atomically(cert_path, authority.pem)
    return authority


def _create_authority(name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(name, key, certificate)


def _issue(
    authority: Authority, key: ec.EllipticCurvePrivateKey, names: tuple[str, ...]
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    ca_ski = authority.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LEAF_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(list(_general_names(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )


def _general_names(names: Sequence[str]) -> Iterator[x509.GeneralName]:
    for name in names:
        try:
            yield x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            yield x509.DNSName(name)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o600 if path.suffix == ".key" else 0o644)
    temporary.replace(path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
