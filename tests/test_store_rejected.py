"""The rejected-records sink: every reason and the raw input, one JSON line each, counted."""

from pathlib import Path

import orjson

from hfspider.hub.api import parse_model_info
from hfspider.store.rejected import RejectedSink


def read_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_rejections_are_appended_with_reasons_and_raw_input(tmp_path: Path) -> None:
    sink = RejectedSink(tmp_path / "rejected", run_id="run-1")
    assert not sink.path.exists()  # nothing rejected, no file
    sink.write("validate", ["sha: None is not of type 'string'"], {"id": "a/b"}, "a/b")
    sink.write("listing", ["listing page is not valid JSON"], b"<html>oops</html>")
    sink.write("listing", ["bad bytes"], b"\xff\xfe\x00")
    sink.write("validate", ["odd"], {1: {3, 2}, "info": parse_model_info({"id": "x/y"})})
    assert sink.count == 4
    sink.close()
    assert sink.path == tmp_path / "rejected" / "run-1.jsonl"
    lines = read_lines(sink.path)
    assert [line["stage"] for line in lines] == ["validate", "listing", "listing", "validate"]
    assert lines[0]["model_id"] == "a/b" and lines[1]["model_id"] is None
    assert lines[0]["reasons"] == ["sha: None is not of type 'string'"]
    assert lines[0]["raw"] == {"id": "a/b"}
    assert lines[1]["raw"] == {"utf8": "<html>oops</html>"}
    assert lines[2]["raw"] == {"base64": "//4A"}
    assert lines[3]["raw"]["1"] == [2, 3] and lines[3]["raw"]["info"]["id"] == "x/y"
    assert all(line["rejected_at"].endswith("Z") for line in lines)


def test_input_json_cannot_hold_is_kept_as_repr_with_a_reason(tmp_path: Path) -> None:
    sink = RejectedSink(tmp_path, run_id="r")
    deep: list = []
    cursor = deep
    for _ in range(300):
        cursor.append([])
        cursor = cursor[0]
    sink.write("validate", ["too deep"], deep)
    sink.write("validate", ["huge"], {"n": 2**80})
    sink.close()
    first, second = read_lines(sink.path)
    assert first["raw"]["repr"].startswith("[[[[") and len(first["reasons"]) == 2
    assert second["raw"] == {"repr": "{'n': 1208925819614629174706176}"}
    assert second["reasons"][1].startswith("raw input is not JSON-serialisable")


def test_a_new_sink_appends_to_the_same_run_file(tmp_path: Path) -> None:
    for _ in range(2):
        sink = RejectedSink(tmp_path, run_id="same")
        sink.write("listing", ["x"], {})
        sink.close()
    assert len(read_lines(tmp_path / "same.jsonl")) == 2
    default = RejectedSink(tmp_path)
    assert default.path.name.endswith("Z.jsonl") and default.path.parent == tmp_path
