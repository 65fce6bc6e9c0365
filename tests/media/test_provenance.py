"""Content credentials: sign png / jpeg / wav / mp4 outputs, verify them, and catch tampering."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

from omni import __version__
from omni.cli.verify import main as verify_main
from omni.cli.verify import register
from omni.config import from_dict, to_dict
from omni.media import provenance
from omni.media.provenance import (
    GenerationRecord,
    ProvenanceError,
    Signer,
    prompt_sha256,
    sign_file,
    signer_from_env,
    verify_file,
    warn_unsigned_once,
)

c2pa = pytest.importorskip("c2pa")  # the `provenance` extra: c2pa-python and cryptography
from tests.media.local_ca import LocalCA, make_test_ca  # noqa: E402

PROMPT = "a small red ball bouncing left and right in a blue room; it beeps at every bounce"
FORMATS = ["png", "jpg", "wav", "mp4"]
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LocalCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def unrelated_ca(tmp_path_factory) -> LocalCA:
    return make_test_ca(tmp_path_factory.mktemp("unrelated_ca"), name="someone else")


@pytest.fixture(scope="module")
def signer(ca) -> Signer:
    return Signer(ca.cert_chain, ca.private_key)


@pytest.fixture
def record() -> GenerationRecord:
    return GenerationRecord(
        model="omni-toy",
        weights_sha256="0123456789abcdef" * 4,
        task="t2v",
        prompt_sha256=prompt_sha256(PROMPT),
        seed=1234,
        steps=20,
        guidance_scales={"text": 5.0, "audio": 3.5},
        guidance_min_sigma=0.3,
        scheduler="FlowMatchEulerDiscreteScheduler",
        width=32,
        height=32,
        num_frames=8,
        fps=16.0,
        sample_rate=16000,
        duration_seconds=0.5,
    )


def write_media(path: Path) -> Path:
    """A tiny file of the kind omni writes: an RGB image, mono 16 kHz audio, or H.264 + AAC video."""
    rng = np.random.default_rng(0)
    if path.suffix in (".png", ".jpg"):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    elif path.suffix == ".wav":
        soundfile.write(path, (0.3 * np.sin(np.arange(1600) * 0.1)).astype(np.float32), 16000)
    elif path.suffix == ".mp4":
        with av.open(str(path), "w") as container:
            video = container.add_stream("libx264", rate=16)
            video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
            audio = container.add_stream("aac", rate=16000)
            audio.layout = "mono"
            for i in range(8):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 30 * i, np.uint8), format="rgb24")
                container.mux(video.encode(frame))
            container.mux(video.encode())
            samples = (0.3 * np.sin(np.arange(8192) * 0.1)).astype(np.float32)[None]  # (channels, samples)
            for start in range(0, samples.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    samples[:, start : start + 1024], format="fltp", layout="mono"
                )
                frame.sample_rate = 16000
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
    return path


def payload_offset(path: Path) -> int:
    """The offset of a byte inside the media payload (pixels, samples, frames), never inside the manifest."""
    data = path.read_bytes()
    if path.suffix == ".png":  # 8-byte signature, then (length, type, data, crc) chunks
        offset = 8
        while data[offset + 4 : offset + 8] != b"IDAT":
            offset += 12 + struct.unpack(">I", data[offset : offset + 4])[0]
        return offset + 8 + 4
    if path.suffix == ".jpg":  # SOI, then (marker, length, data) segments up to start-of-scan
        offset = 2
        while data[offset + 1] != 0xDA:
            offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        return offset + 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0] + 4
    if path.suffix == ".wav":  # RIFF header, then (id, little-endian length, data) chunks
        offset = 12
        while data[offset : offset + 4] != b"data":
            size = struct.unpack("<I", data[offset + 4 : offset + 8])[0]
            offset += 8 + size + size % 2
        return offset + 8 + 100
    if path.suffix == ".mp4":  # top-level (size, type, data) boxes
        offset = 0
        while data[offset + 4 : offset + 8] != b"mdat":
            offset += struct.unpack(">I", data[offset : offset + 4])[0]
        return offset + 8 + 100
    raise ValueError(path)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def read_back(path: Path) -> np.ndarray:
    """Decode the media the way a player would: pixels, samples or video frames."""
    if path.suffix in (".png", ".jpg"):
        return np.asarray(Image.open(path))
    if path.suffix == ".wav":
        return soundfile.read(path, dtype="float32")[0]
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_signed_output_is_valid_plays_unchanged_and_carries_the_record(tmp_path, ca, signer, record, fmt):
    path = write_media(tmp_path / f"out.{fmt}")
    decoded = read_back(path)
    size = path.stat().st_size

    assert sign_file(path, record, signer) == path
    result = verify_file(path, trust_anchors=ca.root_cert)

    assert result.status == "valid", result.reason
    assert result.codes == ()
    assert result.record == record
    assert result.record.prompt_sha256 == prompt_sha256(PROMPT)
    assert (result.record.seed, result.record.task) == (1234, "t2v")
    assert result.claim_generator == f"omni/{__version__}"
    assert "CN=omni local test signer" in result.signer
    np.testing.assert_array_equal(read_back(path), decoded)  # credentials do not touch the media
    assert path.stat().st_size - size < 6000  # no thumbnail: the manifest stays a few KB
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_manifest_declares_trained_algorithmic_media_and_no_thumbnail(tmp_path, signer, record):
    path = sign_file(write_media(tmp_path / "out.png"), record, signer)

    with c2pa.Reader(str(path)) as reader:
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}

    (created,) = assertions["c2pa.actions.v2"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == provenance.TRAINED_ALGORITHMIC_MEDIA
    assert assertions[provenance.GENERATION_ASSERTION_LABEL] == to_dict(record)
    assert PROMPT not in json.dumps(store)
    assert "thumbnail" not in manifest


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_flipped_payload_byte_reads_tampered(tmp_path, ca, signer, record, fmt):
    path = sign_file(write_media(tmp_path / f"out.{fmt}"), record, signer)
    flip_byte(path, payload_offset(path))

    result = verify_file(path, trust_anchors=ca.root_cert)

    assert result.status == "tampered", result.reason
    expected = "assertion.bmffHash.mismatch" if fmt == "mp4" else "assertion.dataHash.mismatch"
    assert expected in result.codes


def test_edited_generation_record_reads_tampered(tmp_path, ca, signer, record):
    path = sign_file(write_media(tmp_path / "out.wav"), record, signer)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"omni-toy", b"omni-big"))  # claim another model, manifest bytes only

    result = verify_file(path, trust_anchors=ca.root_cert)

    assert result.status == "tampered"
    assert "assertion.hashedURI.mismatch" in result.codes


def test_signer_from_an_unrelated_root_reads_untrusted(tmp_path, unrelated_ca, signer, record):
    path = sign_file(write_media(tmp_path / "out.mp4"), record, signer)

    result = verify_file(path, trust_anchors=unrelated_ca.root_cert)

    assert result.status == "untrusted"
    assert result.codes == ("signingCredential.untrusted",)
    assert str(unrelated_ca.root_cert) in result.reason
    assert result.record == record  # still readable: untrusted is not tampered


def test_without_trust_anchors_an_intact_file_is_untrusted_and_says_why(tmp_path, signer, record):
    path = sign_file(write_media(tmp_path / "out.png"), record, signer)

    result = verify_file(path)

    assert result.status == "untrusted"
    assert "no trust anchors" in result.reason


def test_tampering_wins_over_untrusted(tmp_path, signer, record):
    path = sign_file(write_media(tmp_path / "out.png"), record, signer)
    flip_byte(path, payload_offset(path))

    assert verify_file(path).status == "tampered"


@pytest.mark.parametrize("fmt", FORMATS)
def test_unsigned_file_reads_none(tmp_path, ca, fmt):
    result = verify_file(write_media(tmp_path / f"out.{fmt}"), trust_anchors=ca.root_cert)

    assert result.status == "none"
    assert result.record is None and result.signer is None


def test_signing_again_replaces_the_credentials(tmp_path, ca, signer, record):
    path = sign_file(write_media(tmp_path / "out.png"), record, signer)
    retake = GenerationRecord(**{**to_dict(record), "task": "retake", "seed": 99})

    sign_file(path, retake, signer)
    result = verify_file(path, trust_anchors=ca.root_cert)

    assert result.status == "valid"
    assert result.record == retake


def test_signing_keeps_the_file_mode(tmp_path, signer, record):
    path = write_media(tmp_path / "out.png")
    path.chmod(0o640)

    sign_file(path, record, signer)

    assert path.stat().st_mode & 0o777 == 0o640


def test_failed_sign_of_a_truncated_file_leaves_it_byte_identical(tmp_path, signer, record):
    path = write_media(tmp_path / "out.png")
    path.write_bytes(path.read_bytes()[:200])
    before = path.read_bytes()

    with pytest.raises(ProvenanceError, match="out.png"):
        sign_file(path, record, signer)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_sign_failing_midway_through_writing_leaves_no_temp_file(tmp_path, signer, record, monkeypatch):
    path = write_media(tmp_path / "out.mp4")
    before = path.read_bytes()

    def sign_half_then_fail(self, signer, format, source, dest):
        dest.write(source.read(1000))
        raise c2pa.C2paError("Signature: the signature does not match the provided data or public key")

    monkeypatch.setattr(c2pa.Builder, "sign", sign_half_then_fail)
    with pytest.raises(ProvenanceError, match="signature does not match"):
        sign_file(path, record, signer)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_key_of_another_certificate_is_rejected_naming_the_key_file(ca, unrelated_ca):
    with pytest.raises(ProvenanceError, match=f"{unrelated_ca.private_key}.*does not belong"):
        Signer(ca.cert_chain, unrelated_ca.private_key)


def test_missing_or_garbled_signer_files_are_named(tmp_path, ca):
    with pytest.raises(ProvenanceError, match=f"certificate chain file not found: {tmp_path / 'nope.pem'}"):
        Signer(tmp_path / "nope.pem", ca.private_key)
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("not a key")
    with pytest.raises(ProvenanceError, match=f"private key {garbled}: not a PEM private key"):
        Signer(ca.cert_chain, garbled)


def test_algorithm_that_does_not_fit_the_key_is_rejected(ca):
    assert Signer(ca.cert_chain, ca.private_key).algorithm == "ES256"
    with pytest.raises(ProvenanceError, match=r"secp256r1 key.*\['ES256'\]"):
        Signer(ca.cert_chain, ca.private_key, algorithm="ES384")
    with pytest.raises(ProvenanceError, match="unknown signing algorithm"):
        Signer(ca.cert_chain, ca.private_key, algorithm="RS1")


def test_self_signed_certificate_is_rejected_with_a_way_out(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "me")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    with pytest.raises(ProvenanceError, match="self-signed.*tests/media/local_ca.py"):
        Signer(tmp_path / "cert.pem", tmp_path / "key.pem")


def test_corrupt_unsupported_or_missing_files_give_a_clear_error(tmp_path, ca, signer, record):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not a png" * 10)
    text = tmp_path / "notes.txt"
    text.write_text("hello")

    with pytest.raises(ProvenanceError, match=f"cannot read content credentials of {junk}"):
        verify_file(junk, trust_anchors=ca.root_cert)
    with pytest.raises(ProvenanceError, match=f"cannot read content credentials of {text}"):
        verify_file(text)
    with pytest.raises(ProvenanceError, match="no such file"):
        verify_file(tmp_path / "missing.mp4")
    with pytest.raises(
        ProvenanceError, match=r"suffix must be one of \['.jpeg', '.jpg', '.mp4', '.png', '.wav'\]"
    ):
        sign_file(text, record, signer)
    with pytest.raises(ProvenanceError, match=f"trust anchors {text}"):
        verify_file(write_media(tmp_path / "out.png"), trust_anchors=text)


def test_generation_record_round_trips_through_json(record):
    assert from_dict(GenerationRecord, json.loads(json.dumps(to_dict(record)))) == record


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt_sha256": PROMPT}, "prompt_sha256 must be 64 lowercase hex"),
        ({"weights_sha256": "abc"}, "weights_sha256 must be 64 lowercase hex"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        (
            {"guidance_scales": {"text": float("nan")}},
            "guidance_scales needs string names and finite numbers",
        ),
        ({"fps": 0}, "fps must be a number > 0"),
        ({"guidance_min_sigma": 2.0}, "guidance_min_sigma must be a number in \\[0, 1\\]"),
    ],
)
def test_generation_record_rejects_bad_values_by_name(record, change, message):
    with pytest.raises(ValueError, match=message):
        GenerationRecord(**{**to_dict(record), **change})


def test_signer_from_env(ca, monkeypatch):
    monkeypatch.delenv(provenance.CERT_ENV, raising=False)
    monkeypatch.delenv(provenance.KEY_ENV, raising=False)
    assert signer_from_env() is None

    monkeypatch.setenv(provenance.CERT_ENV, str(ca.cert_chain))
    with pytest.raises(ProvenanceError, match=f"{provenance.KEY_ENV} is not"):
        signer_from_env()

    monkeypatch.setenv(provenance.KEY_ENV, str(ca.private_key))
    assert signer_from_env() == Signer(ca.cert_chain, ca.private_key)


def test_unsigned_warning_is_printed_once_and_names_the_variables(capsys, monkeypatch):
    monkeypatch.setattr(provenance, "_unsigned_warning_shown", False)

    warn_unsigned_once()
    warn_unsigned_once()

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "OMNI_C2PA_CERT" in err and "OMNI_C2PA_KEY" in err


def test_test_ca_key_is_private_to_its_owner(ca):
    assert ca.private_key.stat().st_mode & 0o777 == 0o600


def test_cli_prints_status_and_exits_0_only_when_all_are_valid(tmp_path, ca, signer, record, capsys):
    good = sign_file(write_media(tmp_path / "good.mp4"), record, signer)
    tampered = sign_file(write_media(tmp_path / "tampered.wav"), record, signer)
    flip_byte(tampered, payload_offset(tampered))
    unsigned = write_media(tmp_path / "unsigned.png")
    anchors = ["--trust-anchors", str(ca.root_cert)]

    assert verify_main([str(good), *anchors]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{good}: valid - ")
    assert "model=omni-toy task=t2v seed=1234" in line

    assert verify_main([str(good), str(tampered), str(unsigned), *anchors]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == [
        f"{good}: valid",
        f"{tampered}: tampered",
        f"{unsigned}: none",
    ]

    assert verify_main([str(good)]) == 1  # no anchors: untrusted
    assert ": untrusted - " in capsys.readouterr().out


def test_cli_exits_2_on_unreadable_files_or_anchors(tmp_path, ca, signer, record, capsys):
    good = sign_file(write_media(tmp_path / "good.png"), record, signer)

    assert verify_main([str(good), str(tmp_path / "missing.mp4"), "--trust-anchors", str(ca.root_cert)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{good}: valid") and out[1].startswith(f"{tmp_path / 'missing.mp4'}: error - ")

    assert verify_main([str(good), "--trust-anchors", str(tmp_path / "nope.pem")]) == 2
    assert "trust anchors file not found" in capsys.readouterr().err


def test_cli_json_output(tmp_path, ca, signer, record, capsys):
    good = sign_file(write_media(tmp_path / "good.png"), record, signer)

    assert verify_main([str(good), "--json", "--trust-anchors", str(ca.root_cert)]) == 0
    result = json.loads(capsys.readouterr().out)

    assert result["status"] == "valid"
    assert from_dict(GenerationRecord, result["record"]) == record


def test_register_adds_verify_to_a_parent_cli(tmp_path, ca, signer, record, capsys):
    good = sign_file(write_media(tmp_path / "good.png"), record, signer)
    parser = argparse.ArgumentParser(prog="omni")
    register(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["verify", str(good), "--trust-anchors", str(ca.root_cert)])

    assert args.run(args) == 0
    assert ": valid - " in capsys.readouterr().out


@pytest.mark.slow
def test_cli_runs_as_a_module(tmp_path, ca, signer, record):
    good = sign_file(write_media(tmp_path / "good.png"), record, signer)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    completed = subprocess.run(
        [sys.executable, "-m", "omni.cli.verify", str(good), "--trust-anchors", str(ca.root_cert)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )

    assert completed.returncode == 0, completed.stderr
    assert ": valid - " in completed.stdout


def test_without_the_provenance_extra_records_build_and_signing_says_what_to_install(ca, record, monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # makes `import c2pa` raise ImportError

    assert GenerationRecord(**to_dict(record)) == record
    with pytest.raises(ProvenanceError, match=r"pip install 'omni\[provenance\]'"):
        Signer(ca.cert_chain, ca.private_key)


def test_a_trust_anchor_bundle_edited_in_place_is_read_again(tmp_path, ca, unrelated_ca):
    from omni.media.provenance import read_trust_anchors

    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(ca.root_cert.read_bytes())
    assert read_trust_anchors(bundle) == ca.root_cert.read_text()
    bundle.write_bytes(ca.root_cert.read_bytes() + unrelated_ca.root_cert.read_bytes())
    assert read_trust_anchors(bundle).count("BEGIN CERTIFICATE") == 2
    bundle.write_text("not a certificate")
    with pytest.raises(ProvenanceError, match="roots.pem"):
        read_trust_anchors(bundle)
