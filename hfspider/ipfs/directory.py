"""UnixFS directories: basic nodes, HAMT shards past the size threshold, nested trees.

A directory is a function of its entries (name -> child link) and the parameters only, so
the same tree gives the same CID whatever order it was listed or fetched in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import mmh3

from hfspider.ipfs.blockstore import BlockSink
from hfspider.ipfs.dagpb import encode_link, encode_node
from hfspider.ipfs.nodes import Link, NodeMaker
from hfspider.ipfs.params import ImportParams
from hfspider.ipfs.unixfs import DIRECTORY_DATA, hamt_data, symlink_data

HASH_BITS = 64  # boxo keeps the first 64 bits of murmur3-x64-128


def symlink(target: str, params: ImportParams, sink: BlockSink) -> Link:
    """A UnixFS Symlink node, as `ipfs add -r` stores a symbolic link."""
    block = encode_node([], symlink_data(target.encode("utf-8")))
    return Link(NodeMaker(params, sink).put(block), len(block), 0)


def build_directory(entries: Mapping[str, Link], params: ImportParams, sink: BlockSink) -> Link:
    """One directory level: a basic node, or a HAMT when its size estimate passes the threshold."""
    named = sorted((_entry_name(name), link) for name, link in entries.items())
    nodes = NodeMaker(params, sink)
    links = [encode_link(link.cid, name, link.tsize) for name, link in named]
    block = encode_node(links, DIRECTORY_DATA)
    if _shard(params, named, len(block)):
        return _hamt_shard(
            [(_name_hash(name), name, link) for name, link in named], 0, params, nodes
        )
    return Link(
        nodes.put(block),
        len(block) + sum(link.tsize for _, link in named),
        sum(link.size for _, link in named),
    )


def build_tree(files: Mapping[str, Link], params: ImportParams, sink: BlockSink) -> Link:
    """A directory tree from `relative/path -> link` (files or symlinks); parents are implied.

    Empty directories can be given as the link of `build_directory({}, ...)`.
    """
    root: dict[str, Any] = {}
    for path, link in files.items():
        parts = _path_parts(path)
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"path {path!r} runs through the file {part!r}")
            node = child
        if parts[-1] in node:
            raise ValueError(f"path {path!r} is given twice (or is also a directory)")
        node[parts[-1]] = link
    return _build_level(root, params, sink)


def _build_level(level: dict[str, Any], params: ImportParams, sink: BlockSink) -> Link:
    entries: dict[str, Link] = {}
    for name, child in level.items():
        entries[name] = _build_level(child, params, sink) if isinstance(child, dict) else child
    return build_directory(entries, params, sink)


def _path_parts(path: str) -> list[str]:
    parts = path.split("/")
    if not path or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a clean relative path: {path!r}")
    return parts


def _entry_name(name: str) -> bytes:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a valid directory entry name: {name!r}")
    return name.encode("utf-8")


def _shard(params: ImportParams, named: list[tuple[bytes, Link]], block_size: int) -> bool:
    if params.hamt_estimation == "disabled":
        return False
    if params.hamt_estimation == "block":
        estimate = block_size
    else:
        estimate = sum(len(name) + len(link.cid) for name, link in named)
    if params.hamt_compare == ">":
        return estimate > params.hamt_threshold
    return estimate >= params.hamt_threshold


def _name_hash(name: bytes) -> int:
    return mmh3.hash64(name, seed=0, x64arch=True, signed=False)[0]


def _hamt_shard(
    items: Iterable[tuple[int, bytes, Link]], depth: int, params: ImportParams, nodes: NodeMaker
) -> Link:
    """One HAMT level: buckets from the next log2(fanout) bits of each name's hash."""
    fanout = params.hamt_fanout
    bits = fanout.bit_length() - 1
    shift = HASH_BITS - (depth + 1) * bits
    if shift < 0:
        raise ValueError("HAMT: names whose 64-bit hashes collide cannot be sharded")
    width = len(f"{fanout - 1:X}")
    buckets: dict[int, list[tuple[int, bytes, Link]]] = {}
    for item in items:
        buckets.setdefault((item[0] >> shift) & (fanout - 1), []).append(item)
    links: list[bytes] = []
    tsize = size = bitfield = 0
    for index in sorted(buckets):
        bitfield |= 1 << index
        label = f"{index:0{width}X}".encode()
        group = buckets[index]
        if len(group) == 1:
            _, name, link = group[0]
            links.append(encode_link(link.cid, label + name, link.tsize))
        else:
            link = _hamt_shard(group, depth + 1, params, nodes)
            links.append(encode_link(link.cid, label, link.tsize))
        tsize += link.tsize
        size += link.size
    block = encode_node(
        links, hamt_data(bitfield.to_bytes((bitfield.bit_length() + 7) // 8), fanout)
    )
    return Link(nodes.put(block), len(block) + tsize, size)
