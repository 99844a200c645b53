"""Rate-limit backends: an exact sliding-window log, in memory or in Redis.

"N per period" means: at most N requests in *any* window of that length, with bursts of up to
N. Each (policy, limit, client) keeps the timestamps of the requests it admitted inside the
current window, so a decision is exact, and idle clients cost nothing once their window ends.

The price of exactness is memory: one entry per admitted request still inside its window. The
memory limiter holds at most `max_keys` client logs and evicts the least recently admitted ones
beyond that, forgetting their history (so an evicted client may be admitted again early). In
Redis a full "100/minute" log takes 5 KB and a full "1000/minute" one 120 KB, so very large
quotas per client ("100000/day") are cheaper with an API gateway's approximate counters.

A request checked against several limits is admitted only if every limit admits it, and a
rejection by one limit charges none of the others.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Protocol, runtime_checkable

from fastapi_chassis.ratelimit._limits import Limit
from fastapi_chassis.state import RedisStore, StateStore

__all__ = [
    "Decision",
    "LimitStatus",
    "MemoryLimiter",
    "RateLimiter",
    "RedisLimiter",
    "create_limiter",
]


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """Where one limit stands for one client after a decision."""

    limit: Limit
    #: Requests still allowed in the current window.
    remaining: int
    #: Seconds until more quota becomes available (0 when the quota is full).
    reset: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check: admitted or not, and every limit's status."""

    allowed: bool
    statuses: tuple[LimitStatus, ...]
    #: Seconds until a retry can succeed; 0 when allowed.
    retry_after: float


@runtime_checkable
class RateLimiter(Protocol):
    """Decides and records one request against a set of limits, atomically."""

    #: "memory" or "redis".
    kind: str

    async def hit(self, policy: str, key: str, limits: Sequence[Limit]) -> Decision:
        """Admit or reject one request by `key` under `policy`; raises `StateUnavailable`."""
        ...


# Bounds the cleanup work one decision does, so a mass expiry never stalls a request.
_SWEEP_BATCH = 64

DEFAULT_MAX_KEYS = 100_000


class MemoryLimiter:
    """One process's limits, exact under asyncio concurrency (decisions never await).

    At most `max_keys` client logs (one per client, policy and limit) are held. Beyond that the
    log whose latest admission is oldest is evicted: memory stays bounded when a flood of
    distinct clients arrives, at the price of forgetting the evicted clients' history, so they
    may be admitted more than their limit within one window. `clock` is a monotonic clock in
    seconds; tests inject their own.
    """

    kind = "memory"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.clock = clock
        self.max_keys = max_keys
        self._size = 0
        # One table per window length, ordered by each log's latest admission: the front holds
        # the logs that went idle first, so cleanup pops from the front until a live one.
        self._tables: dict[int, OrderedDict[tuple[str, int, str], deque[float]]] = {}

    async def hit(self, policy: str, key: str, limits: Sequence[Limit]) -> Decision:
        return self.decide(policy, key, limits)

    def decide(self, policy: str, key: str, limits: Sequence[Limit]) -> Decision:
        """The synchronous decision behind `hit`."""
        now = self.clock()
        found = []
        allowed = True
        for limit in limits:
            horizon = now - limit.period
            table = self._tables.get(limit.period)
            if table is None:
                table = self._tables[limit.period] = OrderedDict()
            else:
                self._sweep(table, horizon)
            ident = (policy, limit.count, key)
            log = table.get(ident)
            if log is None:
                log = deque()
            else:
                while log and log[0] <= horizon:
                    log.popleft()
            excess = len(log) - limit.count
            wait = log[excess] - horizon if excess >= 0 else 0.0
            if wait > 0:
                allowed = False
            found.append((limit, table, ident, log, wait))
        statuses = []
        retry = 0.0
        for limit, table, ident, log, wait in found:
            if allowed:
                log.append(now)
                if ident in table:
                    table.move_to_end(ident)
                else:
                    table[ident] = log
                    self._size += 1
            retry = max(retry, wait)
            oldest = log[0] - now + limit.period if log else 0.0
            statuses.append(_status(limit, len(log), oldest, wait))
        while self._size > self.max_keys:
            self._evict()
        return Decision(allowed, tuple(statuses), retry)

    def _evict(self) -> None:
        # Each table's front is its least recently admitted log; drop the oldest of those fronts
        # (one table per window length, so this looks at four entries at most).
        victim: OrderedDict[tuple[str, int, str], deque[float]] | None = None
        latest = 0.0
        for table in self._tables.values():
            if table:
                log = table[next(iter(table))]
                last = log[-1] if log else -math.inf
                if victim is None or last < latest:
                    victim, latest = table, last
        if victim is None:  # pragma: no cover - the size counter says there is something
            self._size = 0
            return
        victim.popitem(last=False)
        self._size -= 1

    def _sweep(
        self, table: OrderedDict[tuple[str, int, str], deque[float]], horizon: float
    ) -> None:
        for _ in range(_SWEEP_BATCH):
            if not table:
                return
            first = next(iter(table))
            log = table[first]
            if log and log[-1] > horizon:
                return
            del table[first]
            self._size -= 1

    def __len__(self) -> int:
        """Number of client logs held (idle ones are dropped as decisions sweep)."""
        return self._size


def _status(limit: Limit, used: int, oldest_wait: float, wait: float) -> LimitStatus:
    remaining = max(limit.count - used, 0)
    if wait > 0:
        reset = wait
    elif used:
        reset = max(oldest_wait, 0.0)
    else:
        reset = 0.0
    return LimitStatus(limit=limit, remaining=remaining, reset=reset)


# KEYS[i]: the log of limit i, a sorted set of admission times (ms, as scores).
# ARGV: period_ms_1, count_1, period_ms_2, count_2, ...
# Reply: allowed, then per limit: used, ms until the oldest entry leaves, ms until admissible.
# Times go to Redis through '%.3f' because Lua's own number-to-string keeps only 14 digits.
_SLIDING_WINDOW_LUA = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local used, waits = {}, {}
local allowed = 1
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.3f', now - period))
  used[i] = redis.call('ZCARD', KEYS[i])
  waits[i] = 0
  if used[i] >= limit then
    allowed = 0
    local nth = redis.call('ZRANGE', KEYS[i], used[i] - limit, used[i] - limit, 'WITHSCORES')
    waits[i] = tonumber(nth[2]) + period - now
  end
end
local reply = {allowed}
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 * i - 1])
  if allowed == 1 then
    -- The member only has to be unique: same-microsecond admissions differ by their count.
    local at = string.format('%.3f', now)
    redis.call('ZADD', KEYS[i], at, at .. ':' .. used[i])
    redis.call('PEXPIRE', KEYS[i], math.ceil(period))
    used[i] = used[i] + 1
  end
  local oldest = 0
  if used[i] > 0 then
    oldest = tonumber(redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2]) + period - now
  end
  reply[#reply + 1] = used[i]
  reply[#reply + 1] = math.ceil(oldest)
  reply[#reply + 1] = math.ceil(waits[i])
end
return reply
"""


class RedisLimiter:
    """Limits shared by every worker and host using one Redis: one script call per decision.

    The script runs atomically on Redis server time (worker clocks never matter), is sent once
    and then invoked by digest (`EVALSHA`, reloaded after `NOSCRIPT`), and sets an expiry of one
    window on every log it writes, so an idle client's keys vanish. Client keys are hashed, so
    API keys never sit in Redis in clear; the logs of one client share a Redis Cluster slot.
    """

    kind = "redis"

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._script: Any = store.client.register_script(_SLIDING_WINDOW_LUA)

    async def hit(self, policy: str, key: str, limits: Sequence[Limit]) -> Decision:
        digest = blake2b(key.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
        slot = self.store.key(f"rl:{{{policy}:{digest}}}")
        keys = [f"{slot}:{limit.period}" for limit in limits]
        args: list[int] = []
        for limit in limits:
            args += (limit.period * 1000, limit.count)
        reply = await self.store.call(self._script(keys=keys, args=args))
        allowed = int(reply[0]) == 1
        statuses = []
        retry = 0.0
        for i, limit in enumerate(limits):
            used, oldest_ms, wait_ms = (int(v) for v in reply[1 + 3 * i : 4 + 3 * i])
            wait = max(wait_ms, 1) / 1000 if not allowed and wait_ms > 0 else 0.0
            retry = max(retry, wait)
            statuses.append(_status(limit, used, oldest_ms / 1000, wait))
        return Decision(allowed, tuple(statuses), retry)


def create_limiter(store: StateStore, *, max_keys: int = DEFAULT_MAX_KEYS) -> RateLimiter:
    """The limiter matching an app's shared-state store: Redis if configured, else memory.

    `max_keys` bounds the memory limiter; Redis bounds itself with its `maxmemory` policy.
    """
    if isinstance(store, RedisStore):
        return RedisLimiter(store)
    return MemoryLimiter(max_keys=max_keys)
