"""What tests steer and observe: rate limits, faults, the request log, mutations, start and stop."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from hfspider.hubsim.content import read_bytes
from hfspider.hubsim.repofiles import snapshot
from tests.fixtures.hubsim import UNLIMITED, HubSim


def lfs_url(sim: HubSim, min_size: int = 0) -> tuple[str, int, str]:
    """(CDN URL, size, sha256) of the biggest weight of a plain repo, resolved anonymously."""
    truth = sim.truth()
    model = max(
        (m for m in truth.synthetic() if not (m.private or m.gated or m.disabled)),
        key=lambda m: max(s for _, s in m.recipe.weights),
    )
    weight = max((f for f in snapshot(truth, model).files if f.lfs), key=lambda f: f.size)
    assert weight.size >= min_size
    head = sim.request("HEAD", f"/{model.id}/resolve/main/{weight.path}")
    return head.headers["Location"], weight.size, head.headers["X-Linked-Etag"].strip('"')


def raw_get(url: str) -> tuple[int, bytes, str | None]:
    """(status, bytes received, error) of a GET whose body may be cut short."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    try:
        return response.status, response.read(), None
    except http.client.IncompleteRead as exc:
        return response.status, exc.partial, "incomplete"
    except ConnectionResetError:
        return response.status, b"", "reset"
    finally:
        connection.close()


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


# -- rate limits ------------------------------------------------------------------------------


def test_fixed_window_quota_then_429_then_a_new_window(hubsim_factory) -> None:
    sim = hubsim_factory(
        "--window", "3", "--quota", "anonymous:api=5", "--quota", "free:api=7",
        "--token", "hf_carol:free:carol", models=20,
    )  # fmt: skip
    answers = []
    while not answers or answers[-1].status != 429:
        answers.append(sim.get("/api/models?limit=1"))
        assert len(answers) < 12
    blocked = answers[-1]
    remaining, reset = blocked.headers["RateLimit"].removeprefix('"api";').split(";")
    assert remaining == "r=0" and blocked.headers["Retry-After"] == reset.removeprefix("t=")
    assert blocked.headers["RateLimit-Policy"] == '"fixed window";"api";q=5;w=3'
    window = sim.log()[-1]["window"]
    counted = [e for e in sim.log() if e["window"] == window and e["counted"]]
    assert len(counted) == 5 and answers[-2].headers["RateLimit"].startswith('"api";r=0;')
    # other buckets and other identities have their own budget
    assert sim.get("/nobody/nothing/resolve/main/x").status == 401
    carol = sim.get("/api/models?limit=1", {"Authorization": "Bearer hf_carol"})
    assert carol.status == 200 and carol.headers["RateLimit-Policy"].endswith("q=7;w=3")
    time.sleep(int(blocked.headers["Retry-After"]))
    assert sim.get("/api/models?limit=1").status == 200


def test_workers_sharing_a_token_never_exceed_the_quota(hubsim_factory) -> None:
    sim = hubsim_factory(
        "--window", "1", "--quota", "pro:*=10", "--token", "hf_shared:pro:team", models=20
    )
    stop = time.monotonic() + 2.5

    def worker() -> None:
        while time.monotonic() < stop:
            sim.get("/api/models?limit=1", {"Authorization": "Bearer hf_shared"})

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = sim.log()
    assert {e["identity"] for e in log} == {"team"}
    counted = Counter((e["identity"], e["bucket"], e["window"]) for e in log if e["counted"])
    assert max(counted.values()) == 10 and len(counted) >= 2
    assert sum(e["status"] == 429 for e in log) > 0 and sim.stats()["rate_limited"] > 0


# -- faults -------------------------------------------------------------------------------------


def test_status_faults_follow_their_rate_and_the_seed(hubsim_factory) -> None:
    flags = (*UNLIMITED, "--fault", "503=0.3", "--fault", "500=0.2@pages")
    runs = [hubsim_factory(*flags, models=30, seed=s) for s in (3, 3, 4)]
    paths = [f"/api/models?limit={k}" for k in range(1, 61)] + ["/x"] * 20
    statuses = [[sim.get(p).status for p in paths] for sim in runs]
    assert statuses[0] == statuses[1] != statuses[2]
    api, pages = Counter(statuses[0][:60]), Counter(statuses[0][60:])
    assert api[500] == 0 and 8 <= api[503] <= 30 and api[200] == 60 - api[503]
    assert pages[500] > 0 and runs[0].stats()["faults"]["503"] == api[503] + pages[503]


def test_fault_limits_cloudfront_429_slow_and_malformed_json(hubsim_factory) -> None:
    sim = hubsim_factory(
        *UNLIMITED, "--fault", "cloudfront-429=1@api:2", "--fault", "slow=1@pages:1",
        "--slow-seconds", "0.5", "--fault", "malformed-json=1@api:1", models=20,
    )  # fmt: skip
    first, second, third = (sim.get("/api/models?limit=3") for _ in range(3))
    assert first.status == second.status == 429 and "RateLimit" not in first.headers
    assert third.status == 200 and len(third.body) == int(third.headers["Content-Length"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(third.body)
    assert sim.get("/api/models?limit=3").json()  # limits reached: back to normal
    sim.get("/")
    slow = [e for e in sim.log() if e["fault"] == "slow"]
    assert len(slow) == 1 and slow[0]["duration"] >= 0.5


def test_body_faults_on_file_downloads(hubsim_factory) -> None:
    for fault in ("truncate", "reset", "corrupt"):
        sim = hubsim_factory(*UNLIMITED, "--fault", f"{fault}=1@cdn:1", "--huge-files", "0")
        url, size, sha256 = lfs_url(sim)
        status, body, error = raw_get(url)
        entry = wait_for(lambda sim=sim: [e for e in sim.log() if e["origin"] == "cdn"])[-1]
        assert (status, entry["fault"]) == (200, fault)
        if fault == "corrupt":
            assert error is None and len(body) == size and entry["bytes"] == size
            assert hashlib.sha256(body).hexdigest() != sha256
            again = raw_get(url)[1]
            assert sum(a != b for a, b in zip(body, again, strict=True)) == 1
            assert hashlib.sha256(again).hexdigest() == sha256
        else:
            assert error in ("incomplete", "reset") and size // 4 <= entry["bytes"] < size
            assert len(body) <= entry["bytes"]
            if fault == "truncate":
                assert len(body) == entry["bytes"]


def test_flapping_models_change_between_listing_and_detail(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, "--fault", "flap=1@api:3", "--samples", "off", models=30)
    listed = sim.get("/api/models?limit=5&expand=sha&expand=disabled").json()
    mutations = sim.mutations()
    assert [(m["op"], m["cause"]) for m in mutations] == [("update", "fault")] * 3
    flapped = {m["model_id"] for m in mutations}
    assert flapped == {i["id"] for i in listed[:3]}
    truth = sim.truth()
    for item in (i for i in listed if not i["disabled"]):
        now = sim.get(f"/api/models/{item['id']}").json()["sha"]
        assert now == truth.get(item["id"]).sha
        assert (now != item["sha"]) == (item["id"] in flapped)
        pinned = sim.get(f"/api/models/{item['id']}/revision/{item['sha']}").json()
        assert pinned["sha"] == item["sha"]  # the listed commit stays readable


# -- the request log ----------------------------------------------------------------------------


def test_log_charges_a_killed_client_what_its_tcp_stack_acknowledged(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, "--huge-size", "400000000", models=20)
    url, size, _ = lfs_url(sim, min_size=400_000_000)
    receive_buffer = 64 << 10
    reader = f"""
import http.client, os, signal, socket
from urllib.parse import urlsplit
u = urlsplit({url!r})
c = http.client.HTTPConnection(u.hostname, u.port)
c.sock = socket.socket()
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, {receive_buffer})
c.sock.connect((u.hostname, u.port))
c.request("GET", u.path + "?" + u.query)
r = c.getresponse()
got = 0
while got < 8 << 20:
    got += len(r.read(1 << 16))
print(got, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL
    received = int(done.stdout)
    entry = wait_for(lambda: [e for e in sim.log() if e["origin"] == "cdn"])[0]
    assert entry["status"] == 200 and entry["range"] is None
    # what the client's kernel acknowledged: what the client read, plus at most what its
    # receive buffer (twice SO_RCVBUF in Linux's accounting, one segment over) and its 8 KiB
    # read buffer held; not what the emulator's own send buffer still held (megabytes)
    assert received <= entry["bytes"] <= received + 2 * receive_buffer + (64 << 10) + 8192


def test_ignore_range_answers_a_range_with_200_and_the_whole_file(hubsim_factory) -> None:
    sim = hubsim_factory(
        *UNLIMITED, "--fault", "ignore-range=1@cdn:1", "--fault", "ignore-range=1@resolvers",
        "--huge-files", "0", models=20,
    )  # fmt: skip
    url, size, _ = lfs_url(sim)
    whole = sim.get(url)  # no Range: nothing to ignore, the fault is not spent
    ignored = sim.get(url, {"Range": "bytes=100-"})
    honoured = sim.get(url, {"Range": "bytes=100-"})  # the limit (1) is reached
    assert (whole.status, ignored.status, honoured.status) == (200, 200, 206)
    assert ignored.body == whole.body and len(whole.body) == size
    assert "Content-Range" not in ignored.headers
    assert honoured.body == whole.body[100:]
    truth = sim.truth()
    model = next(m for m in truth.synthetic() if not (m.private or m.gated or m.disabled))
    regular = next(f for f in snapshot(truth, model).files if not f.lfs and f.size > 10)
    head = sim.request("HEAD", f"/{model.id}/resolve/main/{regular.path}")
    cached = sim.get(head.headers["Location"], {"Range": "bytes=10-"})
    assert cached.status == 200 and cached.body == read_bytes(regular.source)
    log = [e for e in sim.log() if e["method"] == "GET"]
    assert [(e["status"], e["fault"]) for e in log] == [
        (200, None),
        (200, "ignore-range"),
        (206, None),
        (200, "ignore-range"),
    ]
    assert [e["bytes"] for e in log] == [size, size, size - 100, regular.size]
    assert sim.stats()["faults"] == {"ignore-range": 2}


def test_log_pages_and_stats(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, "--log-max", "5", models=20)
    for k in range(1, 8):
        sim.get(f"/api/models?limit={k}")
    page = sim.get("/_hubsim/log?since=0").json()
    assert page["dropped"] == 2 and [e["seq"] for e in page["entries"]] == [3, 4, 5, 6, 7]
    assert [e["query"] for e in sim.log(since=5)] == ["limit=6", "limit=7"]
    assert sim.new_log()[-1]["seq"] == 7 and sim.new_log() == []
    sim.get("/api/models?limit=0")
    entry = sim.new_log()[0]
    assert (entry["status"], entry["bucket"], entry["auth"], entry["identity"]) == (
        400,
        "api",
        False,
        "anon:127.0.0.1",
    )
    stats = sim.stats()
    assert stats["requests"] == 8 and stats["by_status"] == {"200": 7, "400": 1}
    assert stats["by_bucket"]["api"]["requests"] == 8 and stats["rate_limited"] == 0


# -- mutations ----------------------------------------------------------------------------------


def test_admin_mutations_change_what_is_served(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, "--samples", "off", models=40)
    truth = sim.truth()
    plain = [
        m for m in truth.synthetic() if not (m.private or m.gated or m.disabled or m.renamed_from)
    ]
    a, b, c, d = (m.id for m in plain[:4])
    applied = sim.mutate(
        {"op": "add"},
        {"op": "update", "id": a},
        {"op": "rename", "id": b, "to": f"{b}-renamed"},
        {"op": "gate", "id": c, "gated": "manual"},
        {"op": "delete", "id": d},
    )
    added = applied[0]["id"]
    assert sim.get(f"/api/models/{added}").json()["sha"] == applied[0]["sha"]
    updated = sim.get(f"/api/models/{a}").json()
    assert updated["sha"] == applied[1]["sha"] != truth.get(a).sha
    assert sim.get(f"/api/models/{b}").headers["Location"] == f"/api/models/{b}-renamed"
    assert sim.get(f"/{c}/resolve/main/README.md").headers["X-Error-Code"] == "GatedRepo"
    assert sim.get(f"/api/models/{d}").status == 401
    listed = {i["id"]: i["sha"] for i in sim.get("/api/models?expand=sha").json()}
    now = sim.truth()
    assert listed == {m.id: m.sha for m in now.listed()}
    assert added in listed and d not in listed and f"{b}-renamed" in listed
    bad = sim.request("POST", "/_hubsim/mutate", body=b'{"op": "explode"}')
    assert bad.status == 400
    missing = sim.request("POST", "/_hubsim/mutate", body=b'{"op": "update", "id": "no/such"}')
    assert missing.status == 404


def test_scheduled_mutations(hubsim_factory) -> None:
    sim = hubsim_factory(
        *UNLIMITED, "--mutate-every", "0.2", "--mutate-batch", "2", "--samples", "off", models=30
    )
    records = wait_for(lambda: [m for m in sim.mutations() if len(sim.mutations()) >= 6])
    assert {m["cause"] for m in records} == {"schedule"}
    truth = sim.truth()
    served = {i["id"]: i["sha"] for i in sim.get("/api/models?expand=sha").json()}
    replayed = {m.id: m.sha for m in truth.listed()}
    # a scheduled round may land between the two reads; everything else must agree
    assert len(set(served.items()) ^ set(replayed.items())) <= 4


# -- start and stop -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_prints_one_ready_line_and_stops_on_sigint() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hfspider.hubsim", "--models", "5", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line.startswith("ready http://localhost:") and int(line.split(":")[-1]) > 0
    port = int(line.split(":")[-1])
    with socket.create_connection(("localhost", port)):
        pass
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0 and out == "", err


def test_console_script_uses_the_given_ports() -> None:
    port, cdn_port = free_port(), free_port()
    hfspider = os.path.join(os.path.dirname(sys.executable), "hfspider")
    process = subprocess.Popen(
        [hfspider, "hubsim", "--port", str(port), "--cdn-port", str(cdn_port), "--models", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == f"ready http://localhost:{port}\n"
    connection = http.client.HTTPConnection("localhost", port)
    connection.request("GET", "/_hubsim/info")
    assert json.loads(connection.getresponse().read())["cdn"] == f"http://127.0.0.1:{cdn_port}"
    connection.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0


def test_bad_flags_and_busy_ports_fail_loudly(hubsim_factory) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "hfspider.hubsim", "--fault", "gremlins=1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "fault 'gremlins=1'" in bad.stderr
    taken = hubsim_factory(models=5)
    port = urlsplit(taken.url).port
    with pytest.raises(pytest.fail.Exception, match="hubsim did not start"):
        HubSim("--port", str(port), models=5)
