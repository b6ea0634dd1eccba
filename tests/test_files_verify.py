"""Verification rules, one-pass hashes and how file answers are read (pure)."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from hfspider.files.download import clean_reason, refusal
from hfspider.files.verify import (
    ContentHashes,
    Expected,
    RangeMismatchError,
    Span,
    VerificationError,
    body_span,
    check,
)
from hfspider.ipfs import MemoryBlockstore, cid_bytes, import_bytes, preset
from hfspider.ipfs.cid import RAW, block_cid

PARAMS = preset("unixfs-v1-2025")
DATA = os.urandom(3 * PARAMS.chunk_size + 12345)
SHA256 = hashlib.sha256(DATA).hexdigest()


def git_blob_id(data: bytes) -> str:
    """The oracle: git itself."""
    done = subprocess.run(
        ["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True
    )
    return done.stdout.decode().strip()


def hashed(data: bytes, git: bool, pieces: int = 7) -> tuple[ContentHashes, MemoryBlockstore]:
    store = MemoryBlockstore()
    hashes = ContentHashes(PARAMS, store, len(data) if git else None)
    step = len(data) // pieces + 1
    for start in range(0, len(data), step):
        hashes.update(data[start : start + step])
    return hashes, store


def test_one_pass_gives_sha256_cid_blocks_and_git_blob_id() -> None:
    hashes, store = hashed(DATA, git=True)
    computed = hashes.finish()
    assert computed.size == len(DATA)
    assert computed.sha256 == SHA256
    assert computed.blob_id == git_blob_id(DATA)
    assert computed.imported.cid == import_bytes(DATA, PARAMS).cid
    # the parent node reached the sink; the four raw leaves are noted where they lie in the
    # file, each the raw CID of exactly that slice
    assert len(store) == 1 and cid_bytes(computed.imported.cid) in store
    chunk = PARAMS.chunk_size
    assert [(offset, length) for _, offset, length in computed.leaves] == [
        (0, chunk),
        (chunk, chunk),
        (2 * chunk, chunk),
        (3 * chunk, 12345),
    ]
    for cid, offset, length in computed.leaves:
        assert cid == block_cid(DATA[offset : offset + length], 1, RAW)
    assert hashed(DATA, git=False)[0].finish().blob_id is None


def test_lfs_files_are_checked_on_sha256_and_size() -> None:
    computed = hashed(DATA, git=False)[0].finish()
    check(Expected(len(DATA), sha256=SHA256), computed)
    with pytest.raises(VerificationError, match="sha256"):
        check(Expected(len(DATA), sha256="0" * 64), computed)
    with pytest.raises(VerificationError, match=f"size {len(DATA)}, the Hub says 5"):
        check(Expected(5, sha256=SHA256), computed)


def test_regular_files_are_checked_on_the_git_blob_id() -> None:
    computed = hashed(DATA, git=True)[0].finish()
    check(Expected(len(DATA), blob_id=git_blob_id(DATA)), computed)
    with pytest.raises(VerificationError, match="git blob sha1"):
        check(Expected(len(DATA), blob_id=git_blob_id(DATA[:-1] + b"?")), computed)


def test_nothing_is_accepted_without_the_hubs_size_and_hash() -> None:
    computed = hashed(DATA, git=True)[0].finish()
    for expected in (Expected(len(DATA)), Expected(None, blob_id=git_blob_id(DATA)), Expected()):
        assert not expected.known
        with pytest.raises(VerificationError, match="no size and hash"):
            check(expected, computed)


def test_expected_values_from_a_record_entry() -> None:
    lfs = {"lfs": True, "size_bytes": 9, "sha256": "b" * 64, "blob_id": "c" * 40}
    regular = {"lfs": False, "size_bytes": 9, "sha256": None, "blob_id": "c" * 40}
    lite = {"lfs": None, "size_bytes": None, "sha256": None, "blob_id": None}
    assert Expected.from_entry(lfs) == Expected(9, sha256="b" * 64)
    assert Expected.from_entry(regular) == Expected(9, blob_id="c" * 40)
    assert not Expected.from_entry(lite).known


def test_a_200_is_the_whole_file_even_when_a_range_was_asked() -> None:
    assert body_span(200, {"Content-Length": "1000"}, 0) == Span(0, 1000)
    assert body_span(200, {"Content-Length": "1000"}, 400) == Span(0, 1000)  # Range ignored
    assert body_span(200, {}, 0) == Span(0, None)


def test_a_206_must_continue_the_partial_file_to_its_end() -> None:
    assert body_span(206, {"Content-Range": "bytes 400-999/1000"}, 400) == Span(400, 1000)
    for header in ("bytes 0-999/1000", "bytes 400-499/1000", "bytes */1000", "", "bytes x-y/z"):
        with pytest.raises(RangeMismatchError):
            body_span(206, {"Content-Range": header}, 400)


def test_the_hubs_refusals_keep_its_reason_and_scope() -> None:
    gated = refusal(
        403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model a/b is restricted"}
    )
    assert str(gated) == "HTTP 403 GatedRepo: Access to model a/b is restricted"
    assert gated.whole_repo
    disabled = refusal(403, {"X-Error-Message": "Access to this resource is disabled."})
    assert str(disabled) == "HTTP 403 Access to this resource is disabled." and disabled.whole_repo
    missing = refusal(404, {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
    assert not missing.whole_repo


def test_reasons_never_carry_tokens_signed_queries_or_control_characters() -> None:
    text = (
        "ClientPayloadError: hf_secret123 at http://127.0.0.1:9/repos/x/y?Expires=1&Signature=abc"
        " line\nbreak\x1b[31m" + "z" * 500
    )
    cleaned = clean_reason(text, "hf_secret123")
    assert "hf_secret123" not in cleaned and "Signature" not in cleaned
    assert "http://127.0.0.1:9/repos/x/y?..." in cleaned
    assert cleaned.isprintable() and len(cleaned) == 300
