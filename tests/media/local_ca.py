"""A local certificate authority for testing content credentials offline: a root CA and a leaf it signs.

C2PA validators reject a self-signed signing certificate, so signing locally needs two certificates: a root
that acts as the trust anchor and a leaf (P-256, ES256) that signs. Never use these for published media:
anyone can make the same kind of root, so a file signed this way proves only that it is unchanged.

    .venv/bin/python tests/media/local_ca.py DIR   # writes root.pem, signer-chain.pem, signer-key.pem in DIR
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class LocalCA:
    """Paths of the PEM files `make_test_ca` wrote."""

    root_cert: Path  # trust anchor for `verify_file(..., trust_anchors=root_cert)`
    cert_chain: Path  # leaf then root: what `OMNI_C2PA_CERT` points at
    private_key: Path  # the leaf's key (PKCS#8, unencrypted): what `OMNI_C2PA_KEY` points at


def make_test_ca(folder: str | Path, name: str = "omni local test", days: int = 365) -> LocalCA:
    """Write a fresh root CA and a leaf signing certificate it issued into `folder` (created if needed)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(minutes=5)  # tolerate small clock differences between machines

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{name} root CA", name)
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} signer", name))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        # emailProtection is one of the extended key usages the C2PA trust model accepts for signers.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )

    ca = LocalCA(
        root_cert=folder / "root.pem",
        cert_chain=folder / "signer-chain.pem",
        private_key=folder / "signer-key.pem",
    )
    ca.root_cert.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    ca.cert_chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Create the key file readable by its owner only, before any key bytes reach the disk.
    descriptor = os.open(ca.private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_pem)
    return ca


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def _key_usage(
    digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/media/local_ca.py",
        description="Make a local root CA and a signing certificate for trying content credentials offline.",
    )
    parser.add_argument("folder", type=Path, help="where to write root.pem, signer-chain.pem, signer-key.pem")
    parser.add_argument("--days", type=int, default=365, help="validity of both certificates (default 365)")
    args = parser.parse_args(argv)
    try:
        ca = make_test_ca(args.folder, days=args.days)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    print(f"export OMNI_C2PA_CERT={ca.cert_chain.resolve()}")
    print(f"export OMNI_C2PA_KEY={ca.private_key.resolve()}")
    print(f"# verify with: omni verify FILE --trust-anchors {ca.root_cert.resolve()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
