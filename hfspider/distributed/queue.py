"""The work queue in Redis, with leases: what a worker takes comes back unless acknowledged.

scrapy-redis pops without acknowledgement, so work held by a worker killed with `kill -9`
would be lost. Here every take is a lease that expires at a time on the Redis server's clock
(so hosts need not agree on the time); a live worker renews its leases, acknowledges each
model once it is settled (committed, rejected or given up), and the next take after a lease
expired puts that work back at the head of the queue. Every operation is one Lua script, so
it is atomic, and safe to run twice (a call whose answer was lost is retried).

Keys under `<prefix>:`, all plain strings (JSON work items, model ids, shas, numbers):

* `pending`  list of work ids, taken from the head
* `leases`   sorted set: work id -> lease expiry (server milliseconds)
* `items`    hash: work id -> the work item (JSON, hfspider.distributed.work)
* `attempts` hash: work id -> deliveries so far (the lease's fencing number)
* `done`     hash: model id -> "<sha> <mode>" of the snapshot some worker committed last; the
             lister skips what it names, as a single-process crawl skips what its store has
* `listers`  hash: crawl id -> "running" or "done <end ms>"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hfspider.budget.backends import PatientRedis
from hfspider.distributed.work import Work

# The Redis server's clock in milliseconds, as `now`: leases do not depend on the hosts' clocks.
NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: items, pending, done. ARGV: id, payload, model id, sha, mode.
ENQUEUE = """
local stored = redis.call('HGET', KEYS[3], ARGV[3])
if stored then
  local sha, mode = string.match(stored, '^(%S+) (%S+)$')
  if sha == ARGV[4] and (ARGV[5] == 'lite' or mode == 'full') then
    return 'unchanged'
  end
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 'duplicate'
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 'queued'
"""

# KEYS: pending, leases, items, attempts. ARGV: count, lease ms.
# Answers {requeued, id1, attempt1, payload1, id2, ...}.
TAKE = (
    NOW_MS
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('LPUSH', KEYS[1], id)
end
local answer = {#expired}
local taken = 0
while taken < tonumber(ARGV[1]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then
    break
  end
  local payload = redis.call('HGET', KEYS[3], id)
  if payload then
    local attempt = redis.call('HINCRBY', KEYS[4], id, 1)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    table.insert(answer, id)
    table.insert(answer, attempt)
    table.insert(answer, payload)
    taken = taken + 1
  end
end
return answer
"""
)

# KEYS: leases, attempts. ARGV: lease ms, id1, attempt1, id2, ... Answers the ids not held.
RENEW = (
    NOW_MS
    + """
local lost = {}
for i = 2, #ARGV, 2 do
  local id, attempt = ARGV[i], ARGV[i + 1]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[2], id) == attempt then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), id)
  else
    table.insert(lost, id)
  end
end
return lost
"""
)

# KEYS: leases, pending, items, attempts, done. ARGV: id, model id, sha, mode, committed (0|1).
# Whoever settled the model acknowledges it, even if its lease expired meanwhile: the work is
# done, and a copy put back in the queue need not be done again. Answers 1 if it was still
# queued or leased, 0 if an earlier acknowledgement had removed it.
ACK = """
local id = ARGV[1]
if redis.call('ZREM', KEYS[1], id) == 0 and redis.call('HEXISTS', KEYS[3], id) == 1 then
  redis.call('LREM', KEYS[2], 0, id)
end
local present = redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[4], id)
if ARGV[5] == '1' then
  local value = ARGV[3] .. ' ' .. ARGV[4]
  if not (ARGV[4] == 'lite' and redis.call('HGET', KEYS[5], ARGV[2]) == ARGV[3] .. ' full') then
    redis.call('HSET', KEYS[5], ARGV[2], value)
  end
end
return present
"""

# KEYS: leases, pending, attempts. ARGV: id1, attempt1, ... Puts leases this worker still
# holds back at the head of the queue (a graceful stop); a release is not a delivery.
RELEASE = """
local released = 0
for i = 1, #ARGV, 2 do
  local id, attempt = ARGV[i], ARGV[i + 1]
  if redis.call('ZSCORE', KEYS[1], id) and redis.call('HGET', KEYS[3], id) == attempt then
    redis.call('ZREM', KEYS[1], id)
    redis.call('LPUSH', KEYS[2], id)
    redis.call('HINCRBY', KEYS[3], id, -1)
    released = released + 1
  end
end
return released
"""

# KEYS: pending, leases, listers. Answers {now, pending, leased, listers, running, last end}.
STATUS = (
    NOW_MS
    + """
local states = redis.call('HVALS', KEYS[3])
local running, last_end = 0, 0
for _, state in ipairs(states) do
  local ended = string.match(state, '^done (%d+)$')
  if ended then
    last_end = math.max(last_end, tonumber(ended))
  else
    running = running + 1
  end
end
return {now, redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2]), #states, running,
        last_end}
"""
)

# KEYS: listers. ARGV: crawl id. A lister's end, unless its mark is gone: then Redis lost
# the queue while it listed (answers 0).
LISTER_DONE = (
    NOW_MS
    + """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'running' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], 'done ' .. now)
return 1
"""
)


@dataclass(frozen=True)
class Lease:
    """A taken work item: `attempt` is its delivery number (1 the first time), which also
    fences renewals: a lease taken over by another worker is not this one's to renew."""

    id: str
    attempt: int
    payload: bytes


@dataclass(frozen=True)
class Status:
    """What the queue says about the crawl, times in server milliseconds."""

    now: int
    pending: int
    leased: int
    listers: int
    running: int
    last_end: int

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing leased, and every lister that ever ran is done."""
        return self.pending == 0 and self.leased == 0 and self.listers > 0 and self.running == 0


class WorkQueue:
    """The leased queue (see the module docstring); every call waits while Redis is down."""

    def __init__(self, redis: PatientRedis, prefix: str, lease_seconds: float) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, not {lease_seconds}")
        self.redis = redis
        self.lease_ms = round(lease_seconds * 1000)
        self.prefix = prefix
        self.keys = {
            name: f"{prefix}:{name}"
            for name in ("pending", "leases", "items", "attempts", "done", "listers")
        }
        client = redis.client
        self.scripts = {
            name: client.register_script(source)
            for name, source in (
                ("enqueue", ENQUEUE),
                ("take", TAKE),
                ("renew", RENEW),
                ("ack", ACK),
                ("release", RELEASE),
                ("status", STATUS),
                ("lister_done", LISTER_DONE),
            )
        }

    @classmethod
    def from_settings(cls, settings: Any, user: str) -> WorkQueue:
        """The queue in `RATELIMIT_REDIS_URL` (the Redis the shared budget lives in too)."""
        return cls(
            PatientRedis(settings.get("RATELIMIT_REDIS_URL"), user),
            settings.get("DISTRIBUTED_QUEUE_PREFIX"),
            float(settings.get("DISTRIBUTED_LEASE_SECONDS")),
        )

    async def _run(self, name: str, keys: tuple[str, ...], *args: str | int | bytes) -> Any:
        script = self.scripts[name]
        key_names = [self.keys[key] for key in keys]
        return await self.redis.call(lambda: script(keys=key_names, args=list(args)))

    async def enqueue(self, work: Work) -> str:
        """Queue `work` unless a worker committed that snapshot already ("unchanged") or it
        is queued or leased now ("duplicate"); "queued" otherwise."""
        model = work.model
        keys = ("items", "pending", "done")
        args = (work.id, work.to_json(), model.id, work.sha, work.mode)
        return (await self._run("enqueue", keys, *args)).decode()

    async def take(self, count: int) -> tuple[list[Lease], int]:
        """Lease up to `count` work items; also (first) requeues expired leases, whose number
        is the second value."""
        keys = ("pending", "leases", "items", "attempts")
        answer = await self._run("take", keys, count, self.lease_ms)
        leases = [
            Lease(answer[i].decode(), int(answer[i + 1]), answer[i + 2])
            for i in range(1, len(answer), 3)
        ]
        return leases, int(answer[0])

    async def renew(self, leases: list[Lease]) -> list[str]:
        """Extend these leases by the lease time; the ids of those no longer held."""
        if not leases:
            return []
        args = [value for lease in leases for value in (lease.id, lease.attempt)]
        lost = await self._run("renew", ("leases", "attempts"), self.lease_ms, *args)
        return [work_id.decode() for work_id in lost]

    async def ack(self, lease: Lease, work: Work | None, committed: bool) -> bool:
        """The model is settled; `committed`: its snapshot is in a store (the lister may skip
        it from now on). False if someone else had acknowledged it already."""
        model_id, sha, mode = (work.model.id, work.sha, work.mode) if work else ("", "", "")
        keys = ("leases", "pending", "items", "attempts", "done")
        args = (lease.id, model_id, sha, mode, int(committed and work is not None))
        return bool(await self._run("ack", keys, *args))

    async def release(self, leases: list[Lease]) -> int:
        """Put leases back at the head of the queue now; how many were still held."""
        if not leases:
            return 0
        args = [value for lease in leases for value in (lease.id, lease.attempt)]
        return int(await self._run("release", ("leases", "pending", "attempts"), *args))

    async def status(self) -> Status:
        answer = await self._run("status", ("pending", "leases", "listers"))
        return Status(*(int(value) for value in answer))

    async def lister_started(self, crawl: str) -> None:
        key = self.keys["listers"]
        await self.redis.call(lambda: self.redis.client.hset(key, crawl, "running"))

    async def lister_finished(self, crawl: str) -> bool:
        """Mark the lister done; False if its "running" mark was gone (Redis lost data)."""
        return bool(await self._run("lister_done", ("listers",), crawl))

    async def close(self) -> None:
        await self.redis.close()
