"""Content credentials (C2PA) of any output file: present, intact, and signed by someone trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omni.media.provenance import ProvenanceError, verify_file


def content_credentials(path: str | Path, trust_anchors: str | Path | None = None) -> dict[str, Any]:
    """{"status", "reason", "signer", "claim_generator"} of the file at `path`.

    status is `verify_file`'s (valid / tampered / untrusted / none), or "unreadable" when c2pa cannot
    parse the file or is not installed (the reason says which): a scoring run never stops for it.
    """
    try:
        result = verify_file(path, trust_anchors)
    except ProvenanceError as error:
        return {"status": "unreadable", "reason": str(error), "signer": None, "claim_generator": None}
    return {
        "status": result.status,
        "reason": result.reason,
        "signer": result.signer,
        "claim_generator": result.claim_generator,
    }
