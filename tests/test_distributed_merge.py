"""`hfspider export` over several record stores (a distributed crawl's workers): one dataset,
one row per model, so each (model_id, sha) once, whichever stores hold copies."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest

from hfspider import cli
from hfspider.store.merge import MergedStores
from hfspider.store.records import RecordStore
from tests.test_store_records import make_record

OLD, NEW = "2025-03-12T10:30:05.000Z", "2025-06-01T08:00:00.000Z"


def write_store(directory: Path, records: list[dict]) -> Path:
    with RecordStore(directory / "records.sqlite") as store:
        for record in records:
            store.commit([record])
    return directory


def test_export_merges_worker_stores_keeping_each_model_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_store(
        tmp_path / "worker-1",
        [
            make_record(1),  # also in the second store: a lease that expired mid-crawl
            make_record(2, sha="2" * 40, last_updated=OLD),
            make_record(4, crawl_mode="lite"),
            *(make_record(index) for index in range(10, 40)),
        ],
    )
    second = write_store(
        tmp_path / "worker-2",
        [
            make_record(1),
            make_record(2, sha="3" * 40, last_updated=NEW),  # a newer snapshot wins
            make_record(3),
            make_record(4, crawl_mode="full"),  # of equal snapshots, the full record wins
            *(make_record(index) for index in range(40, 60)),
        ],
    )
    out = tmp_path / "merged"
    # One store given as its file, the other as its directory.
    assert (
        cli.main(["export", "--output-dir", str(out), str(first / "records.sqlite"), str(second)])
        == 0
    )
    assert "exported 54 records" in capsys.readouterr().out
    rows = ds.dataset(out / "parquet", partitioning="hive").to_table().to_pylist()
    keys = [(row["model_id"], row["sha"]) for row in rows]
    assert len(keys) == len(set(keys)) == 54
    by_model = {row["model_id"]: row for row in rows}
    assert len(by_model) == 54
    assert by_model["org2/model-2"]["sha"] == "3" * 40
    assert by_model["org4/model-4"]["crawl_mode"] == "full"
    assert {f"org{i % 7}/model-{i}" for i in [1, 2, 3, 4, *range(10, 60)]} == set(by_model)


def test_a_missing_store_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--output-dir", str(tmp_path / "o"), str(tmp_path / "nope")]) == 1
    assert "no record store at" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no record store to merge"):
        MergedStores([])
