"""The record store: idempotent commits, current snapshots, checkpoints, crash safety."""

import datetime as dt
import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from hfspider.hub.api import parse_model_info
from hfspider.hub.normalise import normalise
from hfspider.schema import validate_record
from hfspider.store.records import RecordStore

SAMPLES = Path(__file__).resolve().parent.parent / "hfspider/hubsim/samples/transcribed"
SAMPLE = SAMPLES / "api_models_ggml-org_gemma-3-1b-it-GGUF__body__2026-08.json"
TAGS = ("text-generation", "fill-mask", None, "image-to-text")


def make_record(
    index: int,
    sha: str | None = None,
    crawl_mode: str = "full",
    last_updated: str = "2025-03-12T10:30:05.000Z",
    hub_id: str | None = None,
) -> dict[str, Any]:
    """A valid record (from a real answer) for a synthetic model number `index`."""
    info = parse_model_info(SAMPLE.read_bytes())
    record = normalise(info, info, crawled_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    record |= {
        "model_id": f"org{index % 7}/model-{index}",
        "name": f"model-{index}",
        "author": f"org{index % 7}",
        "hub_id": hub_id or f"{index:024x}",
        "sha": sha or f"{index:040x}",
        "pipeline_tag": TAGS[index % len(TAGS)],
        "downloads": index * 3,
        "crawl_mode": crawl_mode,
        "last_updated": last_updated,
        "card": f"card of model {index}",
    }
    assert validate_record(record) == []
    return record


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(tmp_path / "records.sqlite") as opened:
        yield opened


def test_wal_mode_and_full_synchronous(store: RecordStore) -> None:
    check = sqlite3.connect(store.path)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, per connection


def test_recommitting_the_same_key_never_duplicates(store: RecordStore) -> None:
    records = [make_record(index) for index in range(10)]
    assert store.commit(records) == 10
    assert store.commit(records) == 0
    assert store.commit(records[:3] + [make_record(10)]) == 1
    rows = sqlite3.connect(store.path).execute("SELECT count(*) FROM records").fetchone()[0]
    assert rows == 11 and store.count() == 11
    assert store.get("org3/model-3", f"{3:040x}") == records[3]
    assert store.get("org3/model-3", "f" * 40) is None


def test_a_recommit_replaces_the_row_with_the_latest_content(store: RecordStore) -> None:
    store.commit([make_record(1)])
    newer = make_record(1) | {"downloads": 999}
    assert store.commit([newer]) == 0
    assert store.get("org1/model-1", f"{1:040x}")["downloads"] == 999


def test_a_lite_record_never_replaces_a_full_one(store: RecordStore) -> None:
    store.commit([make_record(1)])
    store.commit([make_record(1, crawl_mode="lite") | {"downloads": 5}])
    assert store.get("org1/model-1", f"{1:040x}")["crawl_mode"] == "full"
    assert store.has("org1/model-1", f"{1:040x}", "full")
    store.commit([make_record(2, crawl_mode="lite")])
    assert store.has("org2/model-2", f"{2:040x}", "lite")
    assert not store.has("org2/model-2", f"{2:040x}", "full")  # a full crawl must redo it
    assert not store.has("org9/none", "0" * 40, "lite")


def test_current_snapshot_per_model_follows_commits_and_renames(store: RecordStore) -> None:
    old = make_record(1, sha="a" * 40, last_updated="2025-01-01T00:00:00.000Z")
    new = make_record(1, sha="b" * 40, last_updated="2025-02-01T00:00:00.000Z")
    store.commit([old])
    store.commit([new])
    store.commit([old])  # replayed late (after a crash): must not hide the newer snapshot
    current = [orjson.loads(blob) for _, blob in store.iter_current()]
    assert [(r["model_id"], r["sha"]) for r in current] == [("org1/model-1", "b" * 40)]
    renamed = new | {"model_id": "neworg/model-1", "author": "neworg"}
    store.commit([renamed])
    current = [orjson.loads(blob) for _, blob in store.iter_current()]
    assert [r["model_id"] for r in current] == ["neworg/model-1"]  # same hub_id: one model
    assert store.count() == 1


def test_iter_current_orders_by_pipeline_tag_then_model_id(store: RecordStore) -> None:
    store.commit(make_record(index) for index in random.Random(1).sample(range(40), 40))
    keys = [(tag, orjson.loads(blob)["model_id"]) for tag, blob in store.iter_current()]
    assert len(keys) == 40
    assert keys == sorted(keys, key=lambda key: (key[0] is not None, key[0] or "", key[1]))


def test_a_failing_batch_commits_nothing(store: RecordStore) -> None:
    with pytest.raises(KeyError):
        store.commit([make_record(1), {"model_id": "x"}])
    bad = make_record(2) | {"sha": None}
    with pytest.raises(sqlite3.IntegrityError):
        store.commit([make_record(3), bad])
    assert store.count() == 0


def test_checkpoints_round_trip_per_crawl_configuration(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    with RecordStore(path) as store:
        assert store.checkpoint("crawl-a") is None
        store.save_checkpoint("crawl-a", "https://hub/api/models?cursor=1", 1000)
        store.save_checkpoint("crawl-a", "https://hub/api/models?cursor=2", 2000)
        store.save_checkpoint("crawl-b", "https://hub/api/models?author=x&cursor=9")
    with RecordStore(path) as store:
        assert store.checkpoint("crawl-a") == ("https://hub/api/models?cursor=2", 2000)
        assert store.checkpoint("crawl-b") == ("https://hub/api/models?author=x&cursor=9", 0)
        store.save_checkpoint("crawl-a", None)  # finished
        assert store.checkpoint("crawl-a") is None
        assert store.checkpoint("crawl-b") is not None


def test_a_store_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="store format 99, expected 1"):
        RecordStore(path)


CHILD = textwrap.dedent(
    """
    import sys
    from hfspider.store.records import RecordStore
    from tests.test_store_records import make_record

    BATCH = int(sys.argv[2])
    store = RecordStore(sys.argv[1])
    template = [make_record(index) for index in range(BATCH)]
    for batch in range(int(sys.argv[3])):
        records = []
        for offset, base in enumerate(template):
            index = batch * BATCH + offset
            records.append(base | {"model_id": f"o/m-{index}", "hub_id": f"{index:024x}",
                                   "sha": f"{index:040x}", "card": "x" * 20000})
        store.commit(records)
        store.save_checkpoint("crawl", f"page-{batch + 1}")
        print(batch, flush=True)
    """
)


def run_child(path: Path, batch: int, batches: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(batch), str(batches)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_sigkill_mid_commit_leaves_whole_transactions_and_resumable_state(tmp_path: Path) -> None:
    path, batch = tmp_path / "records.sqlite", 100
    rng = random.Random(7)
    for _ in range(3):
        child = run_child(path, batch, 10_000)
        wait_for = rng.randint(2, 6)
        last = -1
        for line in child.stdout:  # commits done and reported
            last = int(line)
            if last >= wait_for:
                break
        child.kill()  # SIGKILL; ~96% of the child's time is spent inside commits (2 MB each)
        child.wait()
        assert child.returncode == -9
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = check.execute("SELECT count(*) FROM records").fetchone()[0]
        distinct = check.execute("SELECT count(DISTINCT model_id || sha) FROM records").fetchone()
        assert rows % batch == 0, "a transaction was partly applied"
        assert rows >= (last + 1) * batch, "a reported commit was lost"
        assert distinct[0] == rows
        checkpoint = check.execute("SELECT cursor_url FROM checkpoints").fetchone()[0]
        assert int(checkpoint.removeprefix("page-")) in {rows // batch, rows // batch - 1}
        for (blob,) in check.execute("SELECT record FROM records"):
            assert orjson.loads(blob)["card"] == "x" * 20000
        check.close()
    replay = run_child(path, batch, 12)  # the same work again from the start: idempotent
    replay.communicate()
    assert replay.returncode == 0
    with RecordStore(path) as store:
        assert store.count() == max(12 * batch, rows)
        assert store.checkpoint("crawl") == ("page-12", 0)
