"""Content credentials (C2PA) on omni outputs: sign a written mp4 / png / wav / jpeg in place, and verify one.

A signed file carries a C2PA manifest that says it was created by a trained algorithm (IPTC digital source
type `trainedAlgorithmicMedia`), names omni and its version as the claim generator, and holds a
`GenerationRecord` (model, weights hash, task, prompt hash, seed, sampler settings). The prompt itself is
never stored. See docs/provenance.md for setting up a signer and for what each verification status means.

c2pa-python and cryptography are the optional `provenance` extra: they are imported when a file is signed
or verified, so building records and `warn_unsigned_once` work without them.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from omni import __version__
from omni.config import from_dict, to_dict
from omni.media.atomic import atomic_output

CERT_ENV = "OMNI_C2PA_CERT"
KEY_ENV = "OMNI_C2PA_KEY"
TSA_URL_ENV = "OMNI_C2PA_TSA_URL"

GENERATION_ASSERTION_LABEL = "org.omni.generation"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

# What sign_file embeds into. c2pa reads many more formats; verify_file accepts any of them.
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".wav": "audio/wav",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}

SIGNING_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "ED25519")

VerificationStatus = Literal["valid", "tampered", "untrusted", "none"]

# c2pa failure codes that concern who signed (trust, expiry, revocation, time stamps) rather than what was
# signed. Every other failure code means the content or the manifest no longer matches its signature.
_CREDENTIAL_CODE_PREFIXES = ("signingCredential.", "timeStamp.", "claimSignature.outsideValidity")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

_SIGN_SETTINGS = {
    # c2pa would add a JPEG thumbnail to image manifests: measured +86 to +129 KB on a 16x16 image, against
    # 3.8 KB for the whole manifest without it.
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}


class ProvenanceError(ValueError):
    """A signer, trust anchor or media file that cannot be used; the message names the file and why."""


def prompt_sha256(prompt: str) -> str:
    """The hex sha256 of a prompt's UTF-8 bytes, the form in which `GenerationRecord` keeps prompts."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GenerationRecord:
    """How an output was made, embedded in its content credentials as the `org.omni.generation` assertion.

    `omni.config.to_dict(record)` gives the JSON form; `omni.config.from_dict(GenerationRecord, data)` reads
    it back. Media fields that do not apply (fps of an image) stay None.
    """

    model: str
    weights_sha256: str  # hex sha256 of the weights file(s), computed where the weights are loaded
    task: str  # "t2v", "i2v", "t2a", ...
    prompt_sha256: str  # `prompt_sha256(prompt)`: proves a claimed prompt, but guessable prompts can be found
    seed: int
    steps: int
    guidance_scales: dict[str, float] = field(default_factory=dict)  # {"text": 5.0, "audio": 3.0}
    guidance_min_sigma: float | None = None  # the guidance interval's end: unguided steps below it
    scheduler: str | None = None
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    duration_seconds: float | None = None
    omni_version: str = __version__

    def __post_init__(self) -> None:
        for name in ("model", "task", "omni_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"GenerationRecord.{name} must be a non-empty string, got {value!r}")
        for name in ("weights_sha256", "prompt_sha256"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
                raise ValueError(f"GenerationRecord.{name} must be 64 lowercase hex digits, got {value!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"GenerationRecord.seed must be an integer >= 0, got {self.seed!r}")
        if not _is_int(self.steps) or self.steps < 1:
            raise ValueError(f"GenerationRecord.steps must be an integer >= 1, got {self.steps!r}")
        if not isinstance(self.guidance_scales, Mapping):
            raise ValueError(
                f"GenerationRecord.guidance_scales must be a mapping, got {self.guidance_scales!r}"
            )
        for name, scale in self.guidance_scales.items():
            if not isinstance(name, str) or not _is_finite_number(scale):
                raise ValueError(
                    f"GenerationRecord.guidance_scales needs string names and finite numbers, got {name!r}: {scale!r}"
                )
        if self.guidance_min_sigma is not None and not (
            _is_finite_number(self.guidance_min_sigma) and 0 <= self.guidance_min_sigma <= 1
        ):
            raise ValueError(
                f"GenerationRecord.guidance_min_sigma must be a number in [0, 1] or None, got {self.guidance_min_sigma!r}"
            )
        for name in ("width", "height", "num_frames", "sample_rate"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"GenerationRecord.{name} must be an integer >= 1 or None, got {value!r}")
        for name in ("fps", "duration_seconds"):
            value = getattr(self, name)
            if value is not None and (not _is_finite_number(value) or value <= 0):
                raise ValueError(f"GenerationRecord.{name} must be a number > 0 or None, got {value!r}")


@dataclass(frozen=True)
class Signer:
    """A C2PA signing identity: a PEM certificate chain (signing certificate first) and its PEM private key.

    Both files are read and checked here, so a bad setup fails before any generation starts. `algorithm`
    None picks the one the key implies (ES256 for a P-256 key, ES384 for P-384, ES512 for P-521, PS256 for
    RSA, ED25519 for Ed25519). `tsa_url` is an RFC 3161 time-stamp authority; None (the default) signs
    offline, and the signing time is then not independently attested.
    """

    cert_chain: Path
    private_key: Path
    algorithm: str | None = None
    tsa_url: str | None = None
    cert_chain_pem: bytes = field(init=False, repr=False, compare=False)
    private_key_pem: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cert_chain", Path(self.cert_chain))
        object.__setattr__(self, "private_key", Path(self.private_key))
        if self.algorithm is not None and self.algorithm.upper() not in SIGNING_ALGORITHMS:
            raise ProvenanceError(
                f"unknown signing algorithm {self.algorithm!r}: choose one of {list(SIGNING_ALGORITHMS)}"
            )
        if self.tsa_url is not None and not self.tsa_url.startswith(("http://", "https://")):
            raise ProvenanceError(
                f"time-stamp authority URL must start with http:// or https://: {self.tsa_url!r}"
            )
        _provenance_extra()
        cert_chain_pem = _read_file(self.cert_chain, "certificate chain")
        private_key_pem = _read_file(self.private_key, "private key")
        algorithm = _check_signing_identity(
            cert_chain_pem, private_key_pem, self.cert_chain, self.private_key, self.algorithm
        )
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "cert_chain_pem", cert_chain_pem)
        object.__setattr__(self, "private_key_pem", private_key_pem)


def signer_from_env(environ: Mapping[str, str] | None = None) -> Signer | None:
    """The `Signer` named by `OMNI_C2PA_CERT` and `OMNI_C2PA_KEY` (plus optional `OMNI_C2PA_TSA_URL`).

    None when neither variable is set; setting only one of them is an error.
    """
    environ = os.environ if environ is None else environ
    cert, key = environ.get(CERT_ENV, ""), environ.get(KEY_ENV, "")
    if not cert and not key:
        return None
    if not cert or not key:
        missing, given = (CERT_ENV, KEY_ENV) if not cert else (KEY_ENV, CERT_ENV)
        raise ProvenanceError(f"{given} is set but {missing} is not: set both to sign outputs, or neither")
    return Signer(cert_chain=Path(cert), private_key=Path(key), tsa_url=environ.get(TSA_URL_ENV) or None)


def check_signer(signer: Signer) -> None:
    """Sign a one-pixel png in a temporary folder, so a signer that c2pa refuses fails before any work."""
    import tempfile

    import numpy as np

    from omni.media.image import write_png

    record = GenerationRecord(
        model="signer check",
        weights_sha256="0" * 64,
        task="t2i",
        prompt_sha256=prompt_sha256(""),
        seed=0,
        steps=1,
    )
    with tempfile.TemporaryDirectory(prefix="omni-signer-check-") as folder:
        probe = write_png(Path(folder) / "probe.png", np.zeros((1, 1, 3), np.uint8))
        sign_file(probe, record, signer)


_unsigned_warning_shown = False


def warn_unsigned_once(stream: TextIO | None = None) -> None:
    """Say once per process, on stderr, that outputs are unsigned and how to sign them."""
    global _unsigned_warning_shown
    if _unsigned_warning_shown:
        return
    _unsigned_warning_shown = True
    print(
        f"omni: outputs are not signed with content credentials; set {CERT_ENV} and {KEY_ENV} "
        "to sign them (see docs/provenance.md)",
        file=sys.stderr if stream is None else stream,
    )


def sign_file(path: str | Path, record: GenerationRecord, signer: Signer) -> Path:
    """Embed a signed C2PA manifest describing `record` into the media file at `path`, in place.

    The signed file is written next to `path` and renamed over it, so `path` is either the old file or the
    fully signed one; on failure no temporary file remains. Credentials already in the file are replaced.
    """
    path = Path(path)
    if not isinstance(record, GenerationRecord):
        raise TypeError(f"record must be a GenerationRecord, got {type(record).__name__}")
    if not isinstance(signer, Signer):
        raise TypeError(f"signer must be a Signer, got {type(signer).__name__}")
    media_type = MEDIA_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise ProvenanceError(f"cannot sign {path}: suffix must be one of {sorted(MEDIA_TYPES)}")
    if not path.is_file():
        raise ProvenanceError(f"cannot sign {path}: no such file")
    c2pa = _provenance_extra()
    try:
        with (
            c2pa.Context.from_dict(_SIGN_SETTINGS) as context,
            c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(
                    signer.algorithm.lower().encode(),
                    signer.cert_chain_pem,
                    signer.private_key_pem,
                    signer.tsa_url.encode() if signer.tsa_url else None,
                )
            ) as c2pa_signer,
            atomic_output(path, keep_mode=True) as tmp,
            path.open("rb") as source,
            tmp.open("x+b") as dest,
            c2pa.Builder(_manifest_definition(record, title=path.name), context=context) as builder,
        ):
            builder.sign(c2pa_signer, media_type, source, dest)
    except c2pa.C2paError as error:
        raise ProvenanceError(
            f"signing {path} with {signer.cert_chain} failed: {_c2pa_message(error)}"
        ) from error
    return path


@dataclass(frozen=True)
class VerificationResult:
    """What `verify_file` found.

    status:
      valid      signature and content hashes intact, and the signer chains to one of the trust anchors.
      tampered   the media or the manifest changed after signing (a hash or the signature does not match).
      untrusted  intact, but the signer is not vouched for: no trust anchors were given, the signer does not
                 chain to them, or the certificate is expired or revoked. `reason` says which.
      none       the file carries no content credentials.
    """

    path: Path
    status: VerificationStatus
    reason: str
    signer: str | None = None  # subject of the signing certificate, "CN=...,O=..."
    claim_generator: str | None = None  # "omni/0.1.0"
    record: GenerationRecord | None = None
    codes: tuple[str, ...] = ()  # the c2pa validation failure codes behind `status`


def read_trust_anchors(path: str | Path) -> str:
    """The PEM text of a trust-anchor bundle (one or more root certificates), checked to hold certificates.

    Parsed once per version of the file (path, modification time, size): scoring verifies many files
    against one bundle.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return _parse_trust_anchors(path)  # says what is wrong with the path
    return _parsed_trust_anchors(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parsed_trust_anchors(path: Path, mtime_ns: int, size: int) -> str:
    return _parse_trust_anchors(path)


def _parse_trust_anchors(path: Path) -> str:
    _provenance_extra()
    from cryptography import x509

    pem = _read_file(path, "trust anchors")

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise ProvenanceError(f"trust anchors {path}: not a PEM certificate bundle ({error})") from error
    if not certificates:
        raise ProvenanceError(f"trust anchors {path}: no certificate found")
    return pem.decode("utf-8", errors="replace")  # PEM is ASCII; only comments could be anything


def verify_file(path: str | Path, trust_anchors: str | Path | None = None) -> VerificationResult:
    """Check the content credentials of the media file at `path` against the PEM bundle `trust_anchors`.

    Without trust anchors nothing can vouch for the signer, so an intact file reads "untrusted" (never
    "valid") with a reason that says no anchors were given. A file that is missing, unreadable or not a
    format c2pa can parse raises `ProvenanceError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"cannot verify {path}: no such file")
    settings: dict[str, Any] = {
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}
    }
    if trust_anchors is not None:
        settings["trust"] = {"trust_anchors": read_trust_anchors(trust_anchors)}
    c2pa = _provenance_extra()
    try:
        with c2pa.Context.from_dict(settings) as context, path.open("rb") as stream:
            reader = c2pa.Reader.try_create(MEDIA_TYPES.get(path.suffix.lower()), stream, context=context)
            if reader is None:
                return VerificationResult(path, "none", "no content credentials (C2PA manifest) in the file")
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as error:
        raise ProvenanceError(f"cannot read content credentials of {path}: {_c2pa_message(error)}") from error
    return _result_from_store(path, store, trust_anchors)


def _result_from_store(
    path: Path, store: dict[str, Any], trust_anchors: str | Path | None
) -> VerificationResult:
    """Map c2pa's manifest store JSON (validation state and failure codes) onto a `VerificationResult`."""
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    failures = store.get("validation_results", {}).get("activeManifest", {}).get("failure")
    if failures is None:
        failures = store.get("validation_status") or []
    codes = tuple(failure.get("code", "") for failure in failures)
    integrity = [f for f in failures if not f.get("code", "").startswith(_CREDENTIAL_CODE_PREFIXES)]
    credential = [f for f in failures if f.get("code", "").startswith(_CREDENTIAL_CODE_PREFIXES)]
    state = store.get("validation_state")

    if integrity or (state == "Invalid" and not credential):
        status, reason = "tampered", "changed after signing: " + _describe(integrity or failures, state)
    elif credential:
        status = "untrusted"
        if trust_anchors is None:
            reason = (
                "signature and hashes intact, but no trust anchors were given to check the signer against"
            )
        elif codes == ("signingCredential.untrusted",):
            reason = f"signature and hashes intact, but the signer does not chain to a trust anchor in {trust_anchors}"
        else:
            reason = (
                f"signature and hashes intact, but the signer is not trusted: {_describe(credential, state)}"
            )
    elif state == "Trusted":
        anchors = "c2pa's built-in trust list" if trust_anchors is None else trust_anchors
        status, reason = "valid", f"signature and hashes intact; signer chains to a trust anchor in {anchors}"
    else:
        status, reason = "untrusted", f"signature and hashes intact, but c2pa reports the state {state!r}"

    record, record_problem = _generation_record(manifest)
    if record_problem:
        reason += f"; {record_problem}"
    return VerificationResult(
        path=path,
        status=status,
        reason=reason,
        signer=_signer_subject(manifest.get("signature_info") or {}),
        claim_generator=_claim_generator(manifest),
        record=record,
        codes=codes,
    )


def _manifest_definition(record: GenerationRecord, title: str) -> dict[str, Any]:
    agent = {"name": "omni", "version": __version__}
    created = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": agent,
    }
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": GENERATION_ASSERTION_LABEL, "data": to_dict(record)},
        ],
    }


def _generation_record(manifest: dict[str, Any]) -> tuple[GenerationRecord | None, str]:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == GENERATION_ASSERTION_LABEL:
            try:
                return from_dict(GenerationRecord, assertion.get("data")), ""
            except ValueError as error:
                return None, f"its {GENERATION_ASSERTION_LABEL} assertion is not readable here ({error})"
    return None, ""


def _signer_subject(signature_info: dict[str, Any]) -> str | None:
    # c2pa reports the signing certificate's subject CN as common_name and its subject O as issuer.
    parts = [f"CN={signature_info['common_name']}"] if signature_info.get("common_name") else []
    parts += [f"O={signature_info['issuer']}"] if signature_info.get("issuer") else []
    return ",".join(parts) or None


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    infos = manifest.get("claim_generator_info") or []
    if infos and infos[0].get("name"):
        info = infos[0]
        return f"{info['name']}/{info['version']}" if info.get("version") else info["name"]
    return manifest.get("claim_generator")


def _describe(failures: list[dict[str, Any]], state: str | None) -> str:
    if not failures:
        return f"c2pa reports the state {state!r}"
    return "; ".join(f"{f.get('code')} ({f.get('explanation', '')})" for f in failures)


def _check_signing_identity(
    cert_chain_pem: bytes, private_key_pem: bytes, cert_path: Path, key_path: Path, algorithm: str | None
) -> str:
    """Check that the key matches the first certificate and suits `algorithm`; return the algorithm to use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        certificates = x509.load_pem_x509_certificates(cert_chain_pem)
    except ValueError as error:
        raise ProvenanceError(
            f"certificate chain {cert_path}: not a PEM certificate chain ({error})"
        ) from error
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except TypeError as error:
        raise ProvenanceError(
            f"private key {key_path} is encrypted; give an unencrypted PKCS#8 PEM key"
        ) from error
    except ValueError as error:
        raise ProvenanceError(f"private key {key_path}: not a PEM private key ({error})") from error

    leaf = certificates[0]
    key_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    leaf_der = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if key_der != leaf_der:
        raise ProvenanceError(
            f"private key {key_path} does not belong to the first certificate in {cert_path} "
            f"({leaf.subject.rfc4514_string()})"
        )
    now = datetime.datetime.now(datetime.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ProvenanceError(
            f"certificate {leaf.subject.rfc4514_string()} in {cert_path} is valid only from "
            f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}"
        )
    if leaf.issuer == leaf.subject:
        # The usual first attempt (`openssl req -x509`); c2pa would refuse it only at signing time.
        raise ProvenanceError(
            f"certificate {leaf.subject.rfc4514_string()} in {cert_path} is self-signed; C2PA needs a signing "
            "certificate issued by a CA (for local tests: tests/media/local_ca.py DIR in a source checkout)"
        )

    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": ("ES256",), "secp384r1": ("ES384",), "secp521r1": ("ES512",)}
        allowed = by_curve.get(key.curve.name, ())
        kind = f"an EC {key.curve.name} key"
    elif isinstance(key, rsa.RSAPrivateKey):
        allowed, kind = ("PS256", "PS384", "PS512"), "an RSA key"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        allowed, kind = ("ED25519",), "an Ed25519 key"
    else:
        allowed, kind = (), f"a {type(key).__name__}"
    if not allowed:
        raise ProvenanceError(f"private key {key_path} is {kind}, which C2PA cannot sign with")
    if algorithm is None:
        return allowed[0]
    if algorithm.upper() not in allowed:
        raise ProvenanceError(
            f"private key {key_path} is {kind}: algorithm {algorithm!r} needs another key; use one of {list(allowed)}"
        )
    return algorithm.upper()


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise ProvenanceError(f"{what} file not found: {path}") from error
    except OSError as error:
        raise ProvenanceError(f"cannot read {what} file {path}: {error.strerror or error}") from error


def _provenance_extra():
    """Import the optional `provenance` extra (c2pa-python, cryptography); return the c2pa module."""
    try:
        import c2pa
        import cryptography  # noqa: F401
    except ImportError as error:
        raise ProvenanceError(
            "content credentials need c2pa-python and cryptography: pip install 'omni[provenance]'"
        ) from error
    return c2pa


def _c2pa_message(error: Exception) -> str:
    return str(getattr(error, "message", "") or error).strip()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
