"""Nodes as their parents see them, and the one place dag-pb file nodes are hashed and sunk."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from hfspider.ipfs.blockstore import BlockSink
from hfspider.ipfs.cid import DAG_PB, HASHES, BytesLike, make_cid
from hfspider.ipfs.dagpb import encode_link, encode_node
from hfspider.ipfs.params import ImportParams
from hfspider.ipfs.unixfs import FILE, file_data


class Link(NamedTuple):
    """A child as its parent sees it: CID bytes, cumulative size (Tsize), file bytes below."""

    cid: bytes
    tsize: int
    size: int


class NodeMaker:
    """Encodes, hashes and sinks dag-pb nodes for one set of parameters."""

    def __init__(self, params: ImportParams, sink: BlockSink) -> None:
        self.params = params
        self.sink = sink
        self._hash = getattr(hashlib, HASHES[params.hash][1])

    def digest(self, block: BytesLike) -> bytes:
        return self._hash(block).digest()

    def store(self, block: BytesLike, digest: bytes, codec: int = DAG_PB) -> bytes:
        """CID of a block whose digest is known; the block goes to the sink."""
        version = 1 if codec != DAG_PB else self.params.cid_version
        cid = make_cid(version, codec, digest, self.params.hash)
        self.sink.put(cid, block)
        return cid

    def put(self, block: BytesLike, codec: int = DAG_PB) -> bytes:
        return self.store(block, self.digest(block), codec)

    def file_node(self, children: list[Link], kind: int = FILE) -> Link:
        """An internal file node over `children` (no children: an empty file)."""
        block = encode_node(
            [encode_link(child.cid, b"", child.tsize) for child in children],
            file_data(sum(c.size for c in children), [c.size for c in children], kind),
        )
        return Link(
            self.put(block),
            len(block) + sum(c.tsize for c in children),
            sum(c.size for c in children),
        )
