"""File bytes: rendered text, or a keyed ChaCha20 keystream that is never stored.

A weight file of several GB costs nothing until someone reads it: its bytes are the ChaCha20
keystream of a key derived from (seed, repo, path, generation), optionally behind a small
format header (safetensors, GGUF). The cipher seeks to any 64-byte block, so HTTP Range
requests start anywhere, and it streams at GB/s.

Hashes are what a client checks, and for big files they are the only expensive part: the
`DigestStore` computes them on first use (in a worker thread, one computation per file even
under concurrent requests) and keeps the sha256 of big files in an append-only JSON Lines file
keyed by the content key, so a later emulator run, or a test rebuilding the ground truth in
process, does not hash the same gigabytes again.

Invariants (the Hub's): an LFS file's `lfs.oid` is sha256(content) and its git `oid` is the
sha1 of its LFS pointer; a regular file's `oid` is the git blob sha1 of its content.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

CHUNK_SIZE = 1 << 20
CHACHA_BLOCK = 64
# The 32-bit block counter of ChaCha20 bounds one keystream to 256 GiB.
MAX_KEYSTREAM_SIZE = CHACHA_BLOCK << 32
# Digests of files at least this big go to the disk cache; smaller ones are cheaper to redo.
DISK_CACHE_MIN_SIZE = 1 << 20
# Files at least this big are hashed in a worker thread so the event loop keeps serving.
THREAD_MIN_SIZE = 4 << 20
DIGESTS_FILE = "digests-v1.jsonl"
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
_ZEROS = bytes(CHUNK_SIZE)


def content_key(*parts: object) -> bytes:
    """A 32-byte ChaCha20 key naming one file's bytes; every part goes into it."""
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes held in memory: rendered text files (cards, configs, tokenizers)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def chunks(self, start: int, end: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        for offset in range(start, end, chunk_size):
            yield self.data[offset : min(end, offset + chunk_size)]


@dataclass(frozen=True, slots=True)
class Keystream:
    """`header` followed by the keystream of `key` up to `size` bytes (LFS weight files)."""

    key: bytes
    size: int
    header: bytes = b""

    def __post_init__(self) -> None:
        if not len(self.header) <= self.size <= MAX_KEYSTREAM_SIZE:
            raise ValueError(f"keystream size {self.size} out of range")

    @property
    def identity(self) -> bytes:
        """Names these exact bytes: the key alone does not (a `--huge-size` or a header of
        another run gives other bytes under the same key)."""
        return hashlib.sha256(self.key + self.size.to_bytes(8, "big") + self.header).digest()

    def chunks(self, start: int, end: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Bytes [start, end) in pieces of at most `chunk_size`."""
        if start < len(self.header):
            yield self.header[start : min(end, len(self.header))]
            start = len(self.header)
        if start >= end:
            return
        block, skip = divmod(start, CHACHA_BLOCK)
        nonce = block.to_bytes(4, "little") + bytes(12)
        encryptor = Cipher(algorithms.ChaCha20(self.key, nonce), mode=None).encryptor()
        if skip:
            encryptor.update(bytes(skip))
        zeros = _ZEROS if chunk_size == CHUNK_SIZE else bytes(chunk_size)
        while start < end:
            n = min(chunk_size, end - start)
            yield encryptor.update(zeros[:n] if n < chunk_size else zeros)
            start += n


ByteSource = Blob | Keystream


def read_bytes(source: ByteSource, start: int = 0, end: int | None = None) -> bytes:
    """The bytes [start, end) of a source, at once (tests and small files)."""
    return b"".join(source.chunks(start, source.size if end is None else end))


def git_blob_sha1(data: bytes) -> str:
    """The object id git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file git stores in place of an LFS file."""
    return LFS_POINTER.format(sha256=sha256, size=size).encode("ascii")


@dataclass(frozen=True, slots=True)
class Digest:
    """What the Hub advertises for one file: git oid, content sha256, and whether it is LFS."""

    size: int
    blob_id: str
    sha256: str
    lfs: bool

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))


class DigestStore:
    """Lazily computed digests: in memory for all files, on disk for big keystreams."""

    def __init__(self, cache_dir: Path | None) -> None:
        self._path = cache_dir / DIGESTS_FILE if cache_dir else None
        self._sha256: dict[bytes, str] = {}
        self._loaded = False
        self._lock = threading.Lock()
        self._pending: dict[bytes, asyncio.Future[str]] = {}

    def digest(self, source: ByteSource) -> Digest:
        """The digest of `source`, computing (and caching) it in this thread if needed."""
        if isinstance(source, Blob):
            return Digest(
                source.size,
                git_blob_sha1(source.data),
                hashlib.sha256(source.data).hexdigest(),
                lfs=False,
            )
        sha256 = self._cached(source)
        if sha256 is None:
            sha256 = self._compute(source)
        return self._lfs_digest(source, sha256)

    async def digest_async(self, source: ByteSource) -> Digest:
        """Like `digest`, but big files are hashed in a worker thread, once per file."""
        if isinstance(source, Blob) or source.size < THREAD_MIN_SIZE:
            return self.digest(source)
        sha256 = self._cached(source)
        if sha256 is None:
            identity = source.identity
            pending = self._pending.get(identity)
            if pending is None:
                loop = asyncio.get_running_loop()
                pending = asyncio.ensure_future(loop.run_in_executor(None, self._compute, source))
                self._pending[identity] = pending
                pending.add_done_callback(lambda _: self._pending.pop(identity, None))
            sha256 = await asyncio.shield(pending)
        return self._lfs_digest(source, sha256)

    @staticmethod
    def _lfs_digest(source: Keystream, sha256: str) -> Digest:
        return Digest(source.size, git_blob_sha1(lfs_pointer(sha256, source.size)), sha256, True)

    def _cached(self, source: Keystream) -> str | None:
        if not self._loaded:
            self._load()
        return self._sha256.get(source.identity)

    def _compute(self, source: Keystream) -> str:
        hasher = hashlib.sha256()
        for chunk in source.chunks(0, source.size):
            hasher.update(chunk)
        sha256 = hasher.hexdigest()
        with self._lock:
            self._sha256[source.identity] = sha256
            if self._path and source.size >= DISK_CACHE_MIN_SIZE:
                self._append(source, sha256)
        return sha256

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if not self._path or not self._path.exists():
                return
            for line in self._path.read_text("utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._sha256[bytes.fromhex(entry["identity"])] = entry["sha256"]
                except (ValueError, KeyError, TypeError):
                    continue  # cut short by a crash, or an older format: recomputed on demand

    def _append(self, source: Keystream, sha256: str) -> None:
        assert self._path is not None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"identity": source.identity.hex(), "size": source.size, "sha256": sha256}
        line = json.dumps(entry)
        # One short O_APPEND write per line: concurrent emulators never interleave lines.
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)


def default_cache_dir() -> Path:
    """Where digests persist between runs: $XDG_CACHE_HOME/hfspider/hubsim."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hfspider" / "hubsim"
