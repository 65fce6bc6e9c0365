"""Writing a pipeline's output as a file: png, wav or mp4, signed with content credentials when a signer is
given, and replaced atomically."""

from __future__ import annotations

from pathlib import Path


def prepare_output(out: Path):
    """Check, before any model is loaded, that `out` can be written and that the signer named by the
    environment can sign (a test signature on a scratch file); return the signer, or None."""
    from omni.media import provenance
    from omni.media.atomic import check_writable

    check_writable(out)
    signer = provenance.signer_from_env()
    if signer is not None:
        provenance.check_signer(signer)
    return signer


def write_result(out: Path, result, record=None, signer=None) -> str:
    """Write a pipeline output as png / wav / mp4, signed when `signer` and `record` are given, and describe
    what was written. `out` is replaced only once the whole file, signature included, is ready."""
    from omni import media
    from omni.media import provenance

    with media.atomic_output(out) as staged:
        if result.images is not None:
            media.write_png(staged, result.images[0])
            what = f"image {result.images.shape[2]}x{result.images.shape[1]}"
        elif result.frames is None:
            media.write_wav(staged, result.audio[0], result.sample_rate)
            what = f"audio {result.audio.shape[-1] / result.sample_rate:.2f} s @ {result.sample_rate} Hz"
        else:
            audio = result.audio[0] if result.audio is not None else None
            media.write_mp4(
                staged, result.frames[0], result.fps, audio, result.sample_rate if audio is not None else None
            )
            f = result.frames[0]
            what = (
                f"{len(f) / result.fps:.2f} s, {len(f)} frames {f.shape[2]}x{f.shape[1]} @ {result.fps:g} fps"
            )
            what += f", audio {result.sample_rate} Hz" if audio is not None else ", no audio"
        if signer is not None and record is not None:
            provenance.sign_file(staged, record, signer)
            what += ", signed"
    if signer is None:
        provenance.warn_unsigned_once()
    return what
