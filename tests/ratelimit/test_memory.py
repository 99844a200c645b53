from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_chassis.ratelimit import MemoryLimiter, get_rate_limiting, parse_limits
from tests.ratelimit.conftest import FakeClock, make_app, serve, settings_for

FIVE_PER_MINUTE = parse_limits("5/minute")


@pytest.mark.anyio
async def test_exactly_n_admitted_then_rejected_until_the_window_moves(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock)
    decisions = []
    for _ in range(5):
        decisions.append(await limiter.hit("p", "alice", FIVE_PER_MINUTE))
        clock.now += 1
    assert all(d.allowed for d in decisions)
    assert [d.statuses[0].remaining for d in decisions] == [4, 3, 2, 1, 0]

    rejected = await limiter.hit("p", "alice", FIVE_PER_MINUTE)
    assert not rejected.allowed
    assert rejected.statuses[0].remaining == 0
    # The first admission (at t=1000) leaves the window at t=1060; now is 1005.
    assert rejected.retry_after == pytest.approx(55)
    assert rejected.statuses[0].reset == pytest.approx(55)

    clock.now = 1060 - 0.001
    assert not (await limiter.hit("p", "alice", FIVE_PER_MINUTE)).allowed
    clock.now = 1060
    again = await limiter.hit("p", "alice", FIVE_PER_MINUTE)
    assert again.allowed
    assert again.statuses[0].remaining == 0
    assert (await limiter.hit("p", "bob", FIVE_PER_MINUTE)).allowed


@pytest.mark.anyio
async def test_full_reset_after_a_quiet_window(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock)
    for _ in range(5):
        await limiter.hit("p", "alice", FIVE_PER_MINUTE)
    clock.now += 60
    fresh = await limiter.hit("p", "alice", FIVE_PER_MINUTE)
    assert fresh.allowed
    assert fresh.statuses[0].remaining == 4


@pytest.mark.anyio
async def test_rejection_by_one_limit_charges_none_of_the_others(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock)
    limits = parse_limits("2/second;5/minute")
    assert (await limiter.hit("p", "k", limits)).allowed
    assert (await limiter.hit("p", "k", limits)).allowed
    for _ in range(10):
        rejected = await limiter.hit("p", "k", limits)
        assert not rejected.allowed
    second, minute = rejected.statuses
    assert (second.remaining, minute.remaining) == (0, 3)
    clock.now += 1
    for _ in range(2):
        assert (await limiter.hit("p", "k", limits)).allowed
    clock.now += 1
    assert (await limiter.hit("p", "k", limits)).allowed
    blocked = await limiter.hit("p", "k", limits)
    assert not blocked.allowed
    assert blocked.statuses[1].remaining == 0
    assert blocked.retry_after == pytest.approx(58)


@pytest.mark.anyio
async def test_policies_and_keys_have_separate_budgets(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock)
    one = parse_limits("1/minute")
    assert (await limiter.hit("a", "k", one)).allowed
    assert (await limiter.hit("b", "k", one)).allowed
    assert (await limiter.hit("a", "j", one)).allowed
    assert not (await limiter.hit("a", "k", one)).allowed


@pytest.mark.anyio
async def test_idle_clients_are_forgotten(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock)
    for i in range(1000):
        await limiter.hit("p", f"client-{i}", FIVE_PER_MINUTE)
    assert len(limiter) == 1000
    clock.now += 61
    for _ in range(20):
        await limiter.hit("p", "late", FIVE_PER_MINUTE)
    assert len(limiter) == 1


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=8),
    period=st.sampled_from([1, 60]),
    gaps=st.lists(st.floats(min_value=0, max_value=0.7), min_size=1, max_size=120),
)
def test_never_more_than_the_limit_in_any_window(
    count: int, period: int, gaps: list[float]
) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    (limit,) = parse_limits(f"{count}/{'second' if period == 1 else 'minute'}")
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap * period
        if limiter.decide("p", "k", [limit]).allowed:
            admitted.append(clock.now)
        else:
            # A rejection is only right when the window really is full.
            window = [t for t in admitted if t > clock.now - period]
            assert len(window) >= count
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + period) <= count


@pytest.mark.anyio
async def test_200_concurrent_requests_admit_exactly_50() -> None:
    app = make_app(settings_for("50/minute"))
    get_rate_limiting(app).limiter = MemoryLimiter(clock=FakeClock())
    async with serve(app) as http:
        responses = await asyncio.gather(*(http.get("/ping") for _ in range(200)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150


def test_memory_stays_bounded_under_a_flood_of_distinct_clients(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock, max_keys=1000)
    limits = parse_limits("100/minute;1000/hour")
    for i in range(50_000):
        assert limiter.decide("p", f"client-{i}", limits).allowed
        assert len(limiter) <= 1000
    assert len(limiter) == 1000


def test_eviction_drops_the_least_recently_admitted_client(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock, max_keys=3)
    one = parse_limits("1/minute")
    for name in ("a", "b", "c"):
        assert limiter.decide("p", name, one).allowed
        clock.now += 1
    assert not limiter.decide("p", "a", one).allowed  # a rejection does not refresh "a"
    assert limiter.decide("p", "d", one).allowed  # evicts "a", admitted longest ago
    assert len(limiter) == 3
    assert not limiter.decide("p", "b", one).allowed
    assert not limiter.decide("p", "c", one).allowed
    assert not limiter.decide("p", "d", one).allowed
    # "a" was forgotten: the documented price of the bound.
    assert limiter.decide("p", "a", one).allowed


def test_eviction_looks_across_window_lengths(clock: FakeClock) -> None:
    limiter = MemoryLimiter(clock=clock, max_keys=2)
    assert limiter.decide("p", "old", parse_limits("1/hour")).allowed
    clock.now += 1
    assert limiter.decide("p", "new", parse_limits("1/minute")).allowed
    clock.now += 1
    assert limiter.decide("p", "newest", parse_limits("1/minute")).allowed
    assert len(limiter) == 2
    assert not limiter.decide("p", "new", parse_limits("1/minute")).allowed
    assert limiter.decide("p", "old", parse_limits("1/hour")).allowed


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryLimiter(max_keys=0)


def test_the_app_limiter_takes_its_bound_from_the_settings() -> None:
    app = make_app(settings_for("5/minute", memory_max_keys=5))
    limiter = get_rate_limiting(app).limiter
    assert isinstance(limiter, MemoryLimiter)
    assert limiter.max_keys == 5
