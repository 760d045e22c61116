from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509

from collector.demo.servers.pki import LAB_CA_NAME, PKI


def _load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_leaf_is_issued_by_the_lab_ca_for_its_names(pki: PKI) -> None:
    leaf, ca = _load_chain(pki.leaf(["web.telegram.org", "127.0.1.10"]).chain)

    assert ca.subject.rfc4514_string() == f"CN={LAB_CA_NAME}"
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_file.read_bytes()))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web.telegram.org"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.1.10")]
    assert leaf.not_valid_before_utc < dt.datetime.now(dt.UTC) < leaf.not_valid_after_utc


def test_rogue_leaf_is_not_issued_by_the_lab_ca(pki: PKI) -> None:
    leaf, rogue = _load_chain(pki.leaf(["web.telegram.org"], issuer="rogue").chain)

    assert rogue.subject != pki.lab.certificate.subject
    assert rogue.public_key() != pki.lab.certificate.public_key()
    leaf.verify_directly_issued_by(pki.rogue.certificate)


def test_leaves_are_cached_per_issuer_and_names(pki: PKI) -> None:
    assert pki.leaf(["a.lab"]) is pki.leaf(["a.lab"])
    assert pki.leaf(["a.lab"]) != pki.leaf(["a.lab"], issuer="rogue")
    assert pki.server_context(["a.lab"]) is pki.server_context(["a.lab"])


def test_a_second_pki_on_the_same_directory_shares_the_cas(pki: PKI) -> None:
    again = PKI(pki.directory)

    assert again.lab.certificate == pki.lab.certificate
    assert again.rogue.certificate == pki.rogue.certificate


def test_a_new_directory_gets_new_cas(pki: PKI, tmp_path: Path) -> None:
    assert PKI(tmp_path).lab.certificate != pki.lab.certificate
