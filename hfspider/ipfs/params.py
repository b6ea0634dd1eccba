"""Import parameters: every knob of `ipfs add` that changes a CID, and the named presets.

A CID is only meaningful together with the parameters that produced it, so they travel as one
frozen value. The presets are the three the project supports; `IPFS_PROFILE` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hfspider.ipfs.cid import HASHES

# Kubo's chunker refuses bigger chunks (boxo chunker.ChunkSizeLimit).
MAX_CHUNK_SIZE = 2096896
DEFAULT_PROFILE = "unixfs-v1-2025"

Layout = Literal["balanced", "trickle"]
Estimation = Literal["links", "block", "disabled"]
Compare = Literal[">", ">="]


@dataclass(frozen=True)
class ImportParams:
    """How files and directories become UnixFS DAGs (see docs/ipfs.md for each field)."""

    cid_version: int
    raw_leaves: bool
    chunk_size: int = 262144
    max_links: int = 174
    hash: str = "sha2-256"
    layout: Layout = "balanced"
    hamt_threshold: int = 262144
    hamt_estimation: Estimation = "links"
    hamt_compare: Compare = ">"
    hamt_fanout: int = 256

    def __post_init__(self) -> None:
        problems = []
        if self.cid_version not in (0, 1):
            problems.append(f"cid_version must be 0 or 1, not {self.cid_version!r}")
        if self.hash not in HASHES:
            problems.append(f"hash must be one of {sorted(HASHES)}, not {self.hash!r}")
        elif self.cid_version == 0 and self.hash != "sha2-256":
            problems.append("CIDv0 requires sha2-256 (Kubo switches to CIDv1 instead)")
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            problems.append(f"chunk_size must be 1..{MAX_CHUNK_SIZE}, not {self.chunk_size}")
        if self.max_links < 2:
            problems.append(f"max_links must be at least 2, not {self.max_links}")
        if self.layout not in ("balanced", "trickle"):
            problems.append(f"layout must be balanced or trickle, not {self.layout!r}")
        if self.hamt_estimation not in ("links", "block", "disabled"):
            problems.append(
                f"hamt_estimation must be links, block or disabled: {self.hamt_estimation!r}"
            )
        if self.hamt_compare not in (">", ">="):
            problems.append(f"hamt_compare must be '>' or '>=', not {self.hamt_compare!r}")
        fanout = self.hamt_fanout
        if not (8 <= fanout <= 1024 and fanout & (fanout - 1) == 0):
            problems.append(f"hamt_fanout must be a power of two in 8..1024, not {fanout}")
        if problems:
            raise ValueError("invalid import parameters: " + "; ".join(problems))

    def kubo_add_options(self) -> dict[str, str]:
        """The `ipfs add` options (RPC query names) that give the same file CIDs.

        Directories also depend on the HAMT settings, which Kubo reads only from its
        `Import.UnixFSHAMTDirectory*` config (see `kubo_import_config`).
        """
        options = {
            "cid-version": str(self.cid_version),
            "raw-leaves": str(self.raw_leaves).lower(),
            "chunker": f"size-{self.chunk_size}",
            "max-file-links": str(self.max_links),
            "hash": self.hash,
            "max-hamt-fanout": str(self.hamt_fanout),
        }
        if self.layout == "trickle":
            options["trickle"] = "true"
        return options

    def kubo_import_config(self) -> dict[str, Any]:
        """Kubo `Import` config values for the directory knobs that have no `add` flag."""
        if self.hamt_compare != ">":
            raise ValueError("Kubo >= 0.40 only compares with '>'; '>=' was Kubo <= 0.39")
        return {
            "UnixFSHAMTDirectorySizeThreshold": f"{self.hamt_threshold}B",
            "UnixFSHAMTDirectorySizeEstimation": self.hamt_estimation,
        }


PRESETS: dict[str, ImportParams] = {
    # `ipfs add` with Kubo's defaults (profile unixfs-v0-2015).
    "kubo": ImportParams(cid_version=0, raw_leaves=False),
    # `ipfs add --cid-version=1`: CIDv1 and raw leaves, otherwise the v0 shape.
    "kubo-v1": ImportParams(cid_version=1, raw_leaves=True),
    # IPIP-499: 1 MiB chunks, 1024 links, HAMT switch on the exact directory block size.
    "unixfs-v1-2025": ImportParams(
        cid_version=1,
        raw_leaves=True,
        chunk_size=1048576,
        max_links=1024,
        hamt_estimation="block",
    ),
}


def preset(name: str) -> ImportParams:
    """The preset called `name`; a clear error naming the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown IPFS profile {name!r}; choose one of {sorted(PRESETS)}"
        ) from None


def params_from_settings(settings: Any) -> ImportParams:
    """The preset named by the `IPFS_PROFILE` setting (default unixfs-v1-2025)."""
    return preset(settings.get("IPFS_PROFILE") or DEFAULT_PROFILE)
