"""A model snapshot as IPLD: a UnixFS directory, a DAG-CBOR record, and the crawl root.

* The directory holds `metadata.json` (the record as JSON) and every fetched file under its
  repo path, so `ipfs get <dir_cid>` gives a usable copy of the repo at that commit.
* The record block is the record with each fetched file's `cid` as a real IPLD link; its CID
  is computed without the `cid` and `dir_cid` fields, which are then added to the record.
* The crawl root is a directory `author/name -> model directory`, HAMT-sharded when large.

Files must already be imported into the same blockstore (the downloader's sink) so that the
CAR of a snapshot can be written from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import orjson

from hfspider.ipfs import dagcbor
from hfspider.ipfs.blockstore import BlockSink, Blockstore
from hfspider.ipfs.car import CarSummary, write_car_file
from hfspider.ipfs.cid import DAG_CBOR, cid_bytes, cid_str
from hfspider.ipfs.directory import build_directory, build_tree
from hfspider.ipfs.importer import ImportedFile, import_bytes
from hfspider.ipfs.nodes import Link, NodeMaker
from hfspider.ipfs.params import ImportParams

METADATA_NAME = "metadata.json"
# Fields of the stored record that are about the IPLD encoding itself, not part of it.
DERIVED_FIELDS = ("cid", "dir_cid")


class SnapshotError(ValueError):
    """A record that cannot become a snapshot; the message starts with the model id."""

    def __init__(self, model_id: str, problem: str) -> None:
        super().__init__(f"{model_id}: {problem}")
        self.model_id = model_id


@dataclass(frozen=True)
class ModelSnapshot:
    model_id: str
    record: dict[str, Any]  # the input record plus `cid`, `dir_cid` and file CIDs (strings)
    directory: Link
    record_cid: bytes
    # The CIDs the record block links to, in `dag export` order: the CAR writer need not
    # decode the block it has just encoded to find them.
    record_links: tuple[bytes, ...] | None = None

    @property
    def cid(self) -> str:
        return cid_str(self.record_cid)

    @property
    def dir_cid(self) -> str:
        return cid_str(self.directory.cid)

    @property
    def roots(self) -> list[bytes]:
        """CAR roots: the directory (what `ipfs get` wants), then the record."""
        return [self.directory.cid, self.record_cid]

    def write_car(self, path: str | os.PathLike[str], store: Blockstore) -> CarSummary:
        links = None if self.record_links is None else {self.record_cid: list(self.record_links)}
        return write_car_file(path, self.roots, store, links=links)


def metadata_json(record: Mapping[str, Any]) -> bytes:
    """The record as stable JSON (sorted keys, UTF-8, one trailing newline).

    The bytes are `json.dumps(sort_keys=True, ensure_ascii=False, indent=2)`'s (they are
    hashed into `dir_cid`). orjson writes the same bytes 15x faster except for some floats
    (`1e-05`), so a record holding a float, or anything orjson refuses, goes through `json`.
    """
    if not _has_float(record):
        try:
            return orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        except TypeError:  # a key that is not a string, an integer beyond 64 bits
            pass
    return (json.dumps(record, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode()


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def build_snapshot(
    record: Mapping[str, Any],
    files: Mapping[str, ImportedFile],
    params: ImportParams,
    store: Blockstore,
) -> ModelSnapshot:
    """Directory + DAG-CBOR record of one model snapshot, their blocks put into `store`.

    `files` maps repo paths (the record's `files[].filename`) to what the importer returned;
    their blocks must already be in `store`. A record file with a `cid` that differs from
    the imported one, or an imported file the record does not list, is a SnapshotError.
    """
    model_id = str(record.get("model_id") or "")
    if not model_id:
        raise SnapshotError("<no model_id>", "the record has no model_id")
    # Only the `files` entries change below: copy those, share the rest (a deep copy of a
    # whole record, card data included, cost ~0.5 ms a model).
    base = {key: value for key, value in record.items() if key not in DERIVED_FIELDS}
    base = _with_own_files(base)
    listed = _attach_file_cids(model_id, base, files)
    for path, imported in files.items():
        if path not in listed:
            raise SnapshotError(model_id, f"imported file {path!r} is not in the record's files")
        if cid_bytes(imported.cid) not in store:
            raise SnapshotError(
                model_id, f"blocks of {path!r} ({imported.cid}) are not in the store"
            )
    if METADATA_NAME in files:
        raise SnapshotError(model_id, f"the repo has its own {METADATA_NAME}; refusing to hide it")

    tree = {path: _link(imported) for path, imported in files.items()}
    metadata = import_bytes(metadata_json(base), params, store)
    tree[METADATA_NAME] = _link(metadata)
    try:
        directory = build_tree(tree, params, store)
    except ValueError as exc:
        raise SnapshotError(model_id, str(exc)) from None

    ipld = _with_own_files(base)
    record_links = []  # in `dag export` order: `files` is the record's only list of links
    for entry in ipld.get("files") or []:
        if entry.get("cid"):
            entry["cid"] = dagcbor.CidLink(cid_bytes(entry["cid"]))
            record_links.append(entry["cid"].cid)
    try:
        block = dagcbor.encode(ipld)
    except ValueError as exc:
        raise SnapshotError(model_id, f"record is not valid DAG-CBOR: {exc}") from None
    record_cid = NodeMaker(params, store).put(block, DAG_CBOR)  # always CIDv1

    final = {**base, "cid": cid_str(record_cid), "dir_cid": cid_str(directory.cid)}
    return ModelSnapshot(model_id, final, directory, record_cid, tuple(record_links))


def _with_own_files(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its own copy of the `files` list and entries (the rest is shared)."""
    entries = record.get("files")
    if not isinstance(entries, list):
        return dict(record)
    own = [dict(entry) if isinstance(entry, dict) else entry for entry in entries]
    return {**record, "files": own}


def _attach_file_cids(
    model_id: str, record: dict[str, Any], files: Mapping[str, ImportedFile]
) -> set[str]:
    """Write each imported file's CID into the record's file entry; return the listed paths."""
    entries = record.get("files") or []
    if not isinstance(entries, list):
        raise SnapshotError(model_id, "record field 'files' is not a list")
    listed: set[str] = set()
    for entry in entries:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise SnapshotError(model_id, f"file entry without a filename: {entry!r}")
        listed.add(name)
        imported = files.get(name)
        if imported is None:
            if entry.get("cid"):
                raise SnapshotError(model_id, f"{name!r} has a cid but was not imported")
            continue
        if entry.get("cid") and entry["cid"] != imported.cid:
            raise SnapshotError(
                model_id, f"CID mismatch for {name!r}: record {entry['cid']}, import {imported.cid}"
            )
        entry["cid"] = imported.cid
    return listed


def _link(imported: ImportedFile) -> Link:
    return Link(cid_bytes(imported.cid), imported.tsize, imported.size)


def build_crawl_root(
    models: Iterable[tuple[str, Link]], params: ImportParams, store: BlockSink
) -> Link:
    """The crawl root: a directory `author/name -> model snapshot directory`, HAMT-sharded
    where large, its own blocks (not the models') put into `store`.

    `models` are (model_id, directory link) pairs sorted by model_id: one author directory is
    built at a time, so memory stays bounded by the largest author and the number of authors,
    whatever the number of models.
    """
    authors: dict[str, Link] = {}
    for author, group in groupby(models, key=lambda model: _author_name(model[0])[0]):
        if author in authors:
            raise ValueError(f"models are not sorted by id (author {author!r} seen twice)")
        names: dict[str, Link] = {}
        for model_id, link in group:
            name = _author_name(model_id)[1]
            if names.get(name, link) != link:
                raise SnapshotError(model_id, "two different snapshots in one crawl root")
            names[name] = link
        authors[author] = build_directory(names, params, store)
    return build_directory(authors, params, store)


def _author_name(model_id: str) -> tuple[str, str]:
    author, sep, name = model_id.partition("/")
    if not (sep and author and name) or "/" in name:
        raise SnapshotError(model_id, "model id is not of the form author/name")
    return author, name


class OnlyIn:
    """`stop_at` for the crawl root's CAR: everything not in `store` (the model snapshots,
    which are in their own CARs) is left out."""

    def __init__(self, store: Blockstore) -> None:
        self.store = store

    def __contains__(self, cid: object) -> bool:
        return cid not in self.store


def write_crawl_root_car(path: str | os.PathLike[str], root: Link, store: Blockstore) -> CarSummary:
    """The crawl root's CAR: only its own blocks. Import the model CARs first: pinning this
    root needs every model's blocks."""
    return write_car_file(path, [root.cid], store, stop_at=OnlyIn(store))
