"""Parquet export: real Arrow types, hive partitions, atomic switch, bounded batches, and the
same rows through pandas, pyarrow.dataset and DuckDB."""

import datetime as dt
import json
import math
import os
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from hfspider import cli
from hfspider.hub.api import parse_model_info
from hfspider.hub.normalise import normalise
from hfspider.schema import record_schema, validate_record
from hfspider.store import parquet
from hfspider.store.parquet import arrow_field, arrow_schema, export_parquet
from hfspider.store.records import RecordStore
from tests.test_store_records import make_record

SAMPLES = Path(__file__).resolve().parent.parent / "hfspider" / "hubsim" / "samples"


def real_records() -> list[dict[str, Any]]:
    """Full-mode records of every recorded model info, plus blobs, a card and a config."""
    records = []
    crawled_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for path in sorted(SAMPLES.glob("interactions/api_models_*__200__*.json")):
        body = json.loads(path.read_text())["response"]["body"].encode()
        info = parse_model_info(body)
        record = normalise(
            info, info, b"---\nlicense: mit\n---\nA card body.", crawled_at=crawled_at
        )
        if info.sha:
            records.append(record)
    hub_ids = [record["hub_id"] for record in records]
    only = [record for record in records if hub_ids.count(record["hub_id"]) == 1]
    only[0]["files"][0] |= {"size_bytes": 1519, "blob_id": "a" * 40, "lfs": False}
    only[1]["files"][-1] |= {"size_bytes": 2**40, "lfs": True, "sha256": "b" * 64}
    only[2]["embedding_vector"] = [0.5, -1.25]
    only[3]["config"] = only[3]["config"] | {"hidden_size": 768, "torch_dtype": "float32"}
    for record in records:
        assert validate_record(record) == []
    return records


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(tmp_path / "records.sqlite") as opened:
        yield opened


def test_arrow_schema_is_derived_from_the_json_schema() -> None:
    schema = arrow_schema()
    properties = list(record_schema()["properties"])
    assert schema.names == [name for name in properties if name != "pipeline_tag"]
    assert schema.field("model_id").type == pa.string() and not schema.field("model_id").nullable
    assert schema.field("downloads").type == pa.int64() and schema.field("downloads").nullable
    assert schema.field("created_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("private").type == pa.bool_()
    assert schema.field("card_data").type == pa.string()  # free-form: JSON text
    assert schema.field("tags").type == pa.list_(pa.field("element", pa.string(), False))
    files = schema.field("files").type
    assert pa.types.is_list(files) and pa.types.is_struct(files.value_type)
    item = files.value_type
    assert [item.field(i).name for i in range(item.num_fields)] == list(
        record_schema()["$defs"]["file"]["properties"]
    )
    assert item.field("size_bytes").type == pa.int64()
    assert item.field("lfs").type == pa.bool_()
    config = schema.field("config").type
    assert pa.types.is_struct(config) and config.field("hidden_size").type == pa.int64()
    performance = schema.field("performance").type.value_type
    assert performance.field("value").type == pa.float64()
    assert schema.field("embedding_vector").type.value_type == pa.float64()


def test_unsupported_json_schema_shapes_are_refused() -> None:
    root = {"$defs": {}}
    with pytest.raises(ValueError, match="type union"):
        arrow_field("x", {"type": ["string", "integer"]}, root, top=True)
    with pytest.raises(ValueError, match="only at the top level"):
        arrow_field("x", {"type": "object"}, root, top=False)
    with pytest.raises(ValueError, match="unsupported \\$ref"):
        arrow_field("x", {"$ref": "other.json#/x"}, root, top=True)


def canonical(value: Any) -> Any:
    """One Python form for what the three readers return (numpy arrays, Timestamps, NaN)."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [canonical(item) for item in value]
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)  # pandas turns int columns with nulls into floats
    return value


def read_pandas(path: Path) -> list[dict[str, Any]]:
    frame = pd.read_parquet(path)
    frame["pipeline_tag"] = frame["pipeline_tag"].astype(str)
    return sorted(canonical(frame.to_dict("records")), key=lambda row: row["model_id"])


def read_arrow(path: Path) -> list[dict[str, Any]]:
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    return sorted(canonical(table.to_pylist()), key=lambda row: row["model_id"])


def read_duckdb(path: Path) -> list[dict[str, Any]]:
    relation = duckdb.sql(
        f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
    )
    rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    return sorted(canonical(rows), key=lambda row: row["model_id"])


def expected_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a reader must return for these records (documented conversions applied)."""
    rows = []
    for record in records:
        row = dict(record)
        for name in ("created_at", "last_updated", "crawled_at"):
            if row[name] is not None:
                row[name] = dt.datetime.fromisoformat(row[name])
        row["card_data"] = orjson.dumps(row["card_data"]).decode() if row["card_data"] else None
        row["pipeline_tag"] = row["pipeline_tag"] or "none"
        rows.append(row)
    return sorted(canonical(rows), key=lambda row: row["model_id"])


def test_pandas_pyarrow_and_duckdb_read_exactly_the_stored_records(
    store: RecordStore, tmp_path: Path
) -> None:
    records = real_records()
    store.commit(records)
    current = [orjson.loads(blob) for _, blob in store.iter_current()]
    assert len(current) == store.count() < len(records)  # some samples are older snapshots
    result = export_parquet(store, tmp_path, batch_rows=7)
    assert result.rows == len(current)
    expected = expected_rows(current)
    by_pandas, by_arrow, by_duckdb = (
        read(result.path) for read in (read_pandas, read_arrow, read_duckdb)
    )
    assert len(by_pandas) == len(by_arrow) == len(by_duckdb) == len(current)
    for index, row in enumerate(expected):
        assert by_arrow[index] == row, row["model_id"]
        assert by_pandas[index] == row, row["model_id"]
        assert by_duckdb[index] == row, row["model_id"]
    assert json.loads(by_duckdb[0]["card_data"]) == {"license": "mit"}


def test_nested_columns_are_real_arrow_types_in_the_files(
    store: RecordStore, tmp_path: Path
) -> None:
    store.commit(real_records())
    result = export_parquet(store, tmp_path)
    for path in result.path.rglob("*.parquet"):
        metadata = pq.read_metadata(path)
        assert metadata.row_group(0).column(0).compression == "ZSTD"
        schema = pq.read_schema(path)
        assert schema.field("files").type == arrow_schema().field("files").type
        assert "pipeline_tag" not in schema.names
    sizes = duckdb.sql(
        f"SELECT max(f.size_bytes), bool_or(f.lfs) FROM read_parquet('{result.path}/**/*.parquet'),"
        " unnest(files) AS t(f)"
    ).fetchall()
    assert sizes == [(2**40, True)]


def test_hive_partitions_by_pipeline_tag_with_a_clear_value_for_none(
    store: RecordStore, tmp_path: Path
) -> None:
    store.commit(make_record(index) for index in range(12))
    result = export_parquet(store, tmp_path)
    directories = sorted(path.name for path in result.path.iterdir())
    assert directories == [
        "pipeline_tag=fill-mask",
        "pipeline_tag=image-to-text",
        "pipeline_tag=none",
        "pipeline_tag=text-generation",
    ]
    assert result.partitions == {
        "none": 3,
        "fill-mask": 3,
        "image-to-text": 3,
        "text-generation": 3,
    }
    frame = pd.read_parquet(result.path, filters=[("pipeline_tag", "=", "none")])
    assert sorted(frame["model_id"]) == sorted(f"org{i % 7}/model-{i}" for i in (2, 6, 10))


def test_export_switches_atomically_and_survives_a_failed_export(
    store: RecordStore, tmp_path: Path
) -> None:
    store.commit(make_record(index) for index in range(5))
    first = export_parquet(store, tmp_path)
    assert first.path.is_symlink() and len(pd.read_parquet(first.path)) == 5
    first_target = os.readlink(first.path)
    store.commit([make_record(5)])
    with sqlite3.connect(store.path) as db:  # a row Arrow cannot take: the export must fail
        bad = orjson.dumps(make_record(6) | {"downloads": "many"})
        db.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, 'full', NULL, ?)",
            ("org6/model-6", "6" * 40, "6" * 24, "text-generation", bad),
        )
        db.execute(
            "INSERT INTO current VALUES (?, ?, ?, ?, NULL)",
            ("6" * 24, "org6/model-6", "6" * 40, "text-generation"),
        )
    with pytest.raises(pa.ArrowInvalid):
        export_parquet(store, tmp_path)
    assert os.readlink(first.path) == first_target  # readers still see the complete old export
    assert len(pd.read_parquet(first.path)) == 5
    versions = tmp_path / ".parquet-versions"
    assert len(list(versions.glob("*.tmp"))) == 1  # the dead export's staging directory
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM current WHERE hub_id = ?", ("6" * 24,))
    second = export_parquet(store, tmp_path)
    assert len(pd.read_parquet(second.path)) == 6
    assert not list(versions.glob("*.tmp"))
    second_target = Path(os.readlink(second.path)).name
    third = export_parquet(store, tmp_path)
    kept = sorted(entry.name for entry in versions.iterdir() if entry.is_dir())
    assert kept == sorted([second_target, Path(os.readlink(third.path)).name])  # and no older


def test_row_groups_are_bounded_by_rows_and_bytes(
    store: RecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.commit(make_record(index * 4) for index in range(250))  # all text-generation
    result = export_parquet(store, tmp_path, batch_rows=100)
    (path,) = result.path.rglob("*.parquet")
    metadata = pq.read_metadata(path)
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [
        100,
        100,
        50,
    ]
    monkeypatch.setattr(parquet, "BATCH_BYTES", 20_000)
    result = export_parquet(store, tmp_path, batch_rows=100)
    (path,) = result.path.rglob("*.parquet")
    assert pq.read_metadata(path).num_row_groups > 3
    assert pq.read_metadata(path).num_rows == 250


def test_export_memory_does_not_grow_with_the_number_of_records(tmp_path: Path) -> None:
    """Peak Python memory of an export is flat in the number of records (unbounded, it is
    proportional: about 4x from 100 to 400 records here)."""

    def peak(count: int) -> int:
        directory = tmp_path / str(count)
        with RecordStore(directory / "records.sqlite") as store:
            store.commit(make_record(index * 4) | {"card": "c" * 20_000} for index in range(count))
            tracemalloc.start()
            export_parquet(store, directory, batch_rows=20)
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return top

    peak(40)  # first use pays one-time costs (schema loading, imports)
    small, large = peak(100), peak(400)
    assert large < 1.2 * small, (small, large)


def test_an_empty_store_exports_an_empty_readable_dataset(
    store: RecordStore, tmp_path: Path
) -> None:
    result = export_parquet(store, tmp_path)
    assert (result.rows, result.partitions) == (0, {})
    frame = pd.read_parquet(result.path)
    assert len(frame) == 0 and "model_id" in frame.columns
    assert duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{result.path}/**/*.parquet')"
    ).fetchall() == [(0,)]


def test_a_real_directory_in_the_way_is_not_overwritten(store: RecordStore, tmp_path: Path) -> None:
    (tmp_path / "parquet").mkdir()
    (tmp_path / "parquet" / "mine.txt").write_text("user data")
    with pytest.raises(RuntimeError, match="is a real directory"):
        export_parquet(store, tmp_path)
    assert (tmp_path / "parquet" / "mine.txt").read_text() == "user data"


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--output-dir", str(tmp_path)]) == 1
    assert "no record store at" in capsys.readouterr().err
    with RecordStore(tmp_path / "records.sqlite") as store:
        store.commit(make_record(index) for index in range(8))
    assert cli.main(["export", "--output-dir", str(tmp_path), "--batch-rows", "3"]) == 0
    out = capsys.readouterr().out
    assert out == f"exported 8 records in 4 partitions to {tmp_path / 'parquet'}\n"
    assert len(pd.read_parquet(tmp_path / "parquet")) == 8
