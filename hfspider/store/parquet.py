"""Parquet export of the record store, and the `hfspider export` command.

Layout: `<output>/parquet/pipeline_tag=<tag>/part-0.parquet` (hive partitioning, zstd). A
record without a pipeline tag goes to `pipeline_tag=none` (a missing partition value would
read back as a dictionary null, which pandas cannot load). The Arrow schema is derived from
the JSON Schema, so the two cannot drift: strings, integers (int64), numbers (float64) and
booleans map to themselves, arrays to lists, objects with properties to structs, `date-time`
strings to UTC millisecond timestamps, and the one free-form object (`card_data`) to a JSON
text column.

Several stores (the workers' output directories of a distributed crawl) export as one
dataset through `MergedStores` (hfspider/store/merge.py): one row per model, so each
(model_id, sha) once: `hfspider export --output-dir OUT DIR...`.

Atomicity: each export is written to a fresh directory under `.parquet-versions/`, then the
`parquet` symlink is switched to it with one rename; readers see the old dataset or the new
one, never a mix. Memory stays bounded: records stream from SQLite and are written in row
groups of at most `batch_rows` rows or `BATCH_BYTES` bytes of JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from hfspider.schema import record_schema
from hfspider.store.merge import MergedStores
from hfspider.store.records import STORE_FILE, RecordStore

PARTITION_FIELD = "pipeline_tag"
NO_PARTITION_VALUE = "none"
DATASET_LINK = "parquet"
VERSIONS_DIR = ".parquet-versions"
DEFAULT_BATCH_ROWS = 1000
# JSON bytes per row group: decoded to Python objects it takes several times more memory.
BATCH_BYTES = 4 << 20
PRIMITIVES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}
TIMESTAMP = pa.timestamp("ms", tz="UTC")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref!r}")
    return _resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)


def _types(schema: dict[str, Any]) -> tuple[str, bool]:
    """(the one non-null JSON type, whether null is allowed)."""
    declared = schema["type"]
    types = [declared] if isinstance(declared, str) else list(declared)
    nullable = "null" in types
    types = [name for name in types if name != "null"]
    if len(types) != 1:
        raise ValueError(f"no Arrow type for the JSON type union {declared!r}")
    return types[0], nullable


def arrow_field(name: str, schema: dict[str, Any], root: dict[str, Any], top: bool) -> pa.Field:
    """The Arrow field for one JSON Schema property (rules in the module docstring)."""
    schema = _resolve(schema, root)
    kind, nullable = _types(schema)
    if kind == "array":
        item = arrow_field("element", schema["items"], root, top=False)
        arrow_type: pa.DataType = pa.list_(item)
    elif kind == "object" and "properties" in schema:
        arrow_type = pa.struct(
            [arrow_field(key, value, root, False) for key, value in schema["properties"].items()]
        )
    elif kind == "object" or schema.get("format") == "date-time":
        if not top:  # converted per row by _arrow_row, which only looks at top-level fields
            raise ValueError(f"{name}: free-form objects and date-times only at the top level")
        arrow_type = pa.string() if kind == "object" else TIMESTAMP
    else:
        arrow_type = PRIMITIVES[kind]
    return pa.field(name, arrow_type, nullable=nullable)


def arrow_schema(json_schema: dict[str, Any] | None = None) -> pa.Schema:
    """The Parquet file schema: every record property but the partition key, in order."""
    root = json_schema or record_schema()
    return pa.schema(
        [
            arrow_field(name, prop, root, top=True)
            for name, prop in root["properties"].items()
            if name != PARTITION_FIELD
        ]
    )


def _converters(root: dict[str, Any]) -> dict[str, Any]:
    """Per top-level field, how a JSON value becomes an Arrow value when it is not itself."""
    converters: dict[str, Any] = {}
    for name, prop in root["properties"].items():
        prop = _resolve(prop, root)
        if _types(prop)[0] == "object" and "properties" not in prop:
            converters[name] = _json_text
        elif prop.get("format") == "date-time":
            converters[name] = dt.datetime.fromisoformat
    return converters


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


class RecordSource(Protocol):
    """What an export reads: a `RecordStore`, or several as `MergedStores`."""

    def iter_current(self) -> Iterator[tuple[str | None, bytes]]: ...


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    partitions: dict[str, int]


def partition_value(pipeline_tag: str | None) -> str:
    return pipeline_tag or NO_PARTITION_VALUE


def export_parquet(
    store: RecordSource, output_dir: str | Path, batch_rows: int = DEFAULT_BATCH_ROWS
) -> ExportResult:
    """Write every model's current snapshot to `<output_dir>/parquet` (see module docstring)."""
    output_dir = Path(output_dir)
    link = output_dir / DATASET_LINK
    if link.exists() and not link.is_symlink():
        raise RuntimeError(f"{link} is a real directory, not an export of hfspider; move it away")
    versions = output_dir / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    with open(versions / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one export at a time per output directory
        _remove_unfinished(versions)
        name = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        staging = versions / f"{name}.tmp"
        partitions = _write_dataset(store, staging, batch_rows)
        final = versions / name
        staging.rename(final)
        _fsync_dir(versions)
        temporary_link = output_dir / f".{DATASET_LINK}.{os.getpid()}.link"
        temporary_link.unlink(missing_ok=True)
        temporary_link.symlink_to(Path(VERSIONS_DIR) / name)
        previous = os.readlink(link) if link.is_symlink() else None
        os.replace(temporary_link, link)
        _fsync_dir(output_dir)
        _remove_old_versions(versions, keep={name, Path(previous).name if previous else name})
    return ExportResult(link, sum(partitions.values()), partitions)


def _write_dataset(store: RecordSource, directory: Path, batch_rows: int) -> dict[str, int]:
    schema = arrow_schema()
    converters = _converters(record_schema())
    partitions: dict[str, int] = {}
    writer: pq.ParquetWriter | None = None
    current: str | None = None
    for tag, rows in _batches(store.iter_current(), batch_rows):
        value = partition_value(tag)
        if value != current:
            if writer:
                writer.close()
            writer = _open_writer(directory, value, schema)
            current = value
        table = pa.Table.from_pylist([_arrow_row(row, converters) for row in rows], schema)
        writer.write_table(table, row_group_size=len(rows))
        partitions[value] = partitions.get(value, 0) + len(rows)
    if writer:
        writer.close()
    else:  # an empty store still exports a readable, empty dataset with the full schema
        _open_writer(directory, NO_PARTITION_VALUE, schema).close()
    for path in directory.rglob("*.parquet"):
        _fsync_file(path)
    return partitions


def _batches(
    records: Iterator[tuple[str | None, bytes]], batch_rows: int
) -> Iterator[tuple[str | None, list[dict[str, Any]]]]:
    """Consecutive records of one pipeline tag, cut at `batch_rows` rows or BATCH_BYTES."""
    batch: list[dict[str, Any]] = []
    size = 0
    tag: str | None = None
    for record_tag, blob in records:
        if batch and (record_tag != tag or len(batch) >= batch_rows or size >= BATCH_BYTES):
            yield tag, batch
            batch, size = [], 0
        tag = record_tag
        batch.append(orjson.loads(blob))
        size += len(blob)
    if batch:
        yield tag, batch


def _arrow_row(record: dict[str, Any], converters: dict[str, Any]) -> dict[str, Any]:
    for name, convert in converters.items():
        if record.get(name) is not None:
            record[name] = convert(record[name])
    return record


def _open_writer(directory: Path, value: str, schema: pa.Schema) -> pq.ParquetWriter:
    partition = directory / f"{PARTITION_FIELD}={value}"
    partition.mkdir(parents=True)
    return pq.ParquetWriter(partition / "part-0.parquet", schema, compression="zstd")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_unfinished(versions: Path) -> None:
    """Staging directories of exports that died (the lock guarantees none is running)."""
    for entry in versions.glob("*.tmp"):
        shutil.rmtree(entry)


def _remove_old_versions(versions: Path, keep: set[str]) -> None:
    """Keep the new version and the one before it (a reader may still be scanning it)."""
    for entry in versions.iterdir():
        if entry.is_dir() and entry.name not in keep:
            shutil.rmtree(entry)


def main(argv: list[str]) -> int:
    """`hfspider export`: write Parquet from the record store of an output directory, or
    from several merged."""
    from hfspider.config import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(
        prog="hfspider export",
        description="Export the record store to hive-partitioned Parquet (atomic, zstd).",
    )
    parser.add_argument(
        "stores",
        nargs="*",
        metavar="STORE",
        help="merge these record stores (output directories or records.sqlite files, e.g. the "
        "workers' of a distributed crawl) into one dataset, each model once; default: the "
        "output directory's own store",
    )
    parser.add_argument(
        "--output-dir",
        default=settings.get("OUTPUT_DIR", "output"),
        help="output directory holding records.sqlite (default: OUTPUT_DIR, %(default)s)",
    )
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=settings.get("EXPORT_BATCH_ROWS", DEFAULT_BATCH_ROWS),
        help="rows per Parquet row group (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.stores:
        try:
            with MergedStores(args.stores) as merged:
                result = export_parquet(merged, args.output_dir, args.batch_rows)
        except FileNotFoundError as exc:
            print(f"hfspider export: {exc}", file=sys.stderr)
            return 1
    else:
        store_path = Path(args.output_dir) / STORE_FILE
        if not store_path.is_file():
            print(f"hfspider export: no record store at {store_path}", file=sys.stderr)
            return 1
        with RecordStore(store_path) as store:
            result = export_parquet(store, args.output_dir, args.batch_rows)
    print(f"exported {result.rows} records in {len(result.partitions)} partitions to {result.path}")
    return 0


if __name__ == "__main__":  # the crawl's export at close runs this in a child process
    sys.exit(main(sys.argv[1:]))
