"""The request metrics count in plain lists and add them to prometheus_client when collected.

Whatever the order of requests and scrapes, the exposition must be what prometheus_client's
own `Counter.inc()` / `Histogram.observe()` per request would give.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from fastapi_chassis.observability.metrics import RequestMetrics

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LABELS = ("method", "status", "handler")
STATUS = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def _exposition(registry: CollectorRegistry) -> list[str]:
    """The request metrics' lines of a scrape, without `_created` (the creation times differ)."""
    text = generate_latest(registry).decode()
    return sorted(
        line
        for line in text.splitlines()
        if ("http_requests_total" in line or "http_request_duration_seconds" in line)
        and "_created" not in line
    )


def _same(got: list[str], want: list[str]) -> bool:
    """Equal scrapes; a `_sum` may differ in its last bits (sums added in another order)."""
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if a != b:
            (series_a, value_a), (series_b, value_b) = a.rsplit(" ", 1), b.rsplit(" ", 1)
            if "_sum{" not in series_a or series_a != series_b:
                return False
            if not math.isclose(float(value_a), float(value_b), rel_tol=1e-12):
                return False
    return True


def _reference() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total",
        "Requests by method, status class and route template.",
        LABELS,
        registry=registry,
    )
    duration = Histogram(
        "http_request_duration_seconds",
        "Request duration to the last body byte, by method, status class and route template.",
        LABELS,
        buckets=BUCKETS,
        registry=registry,
    )
    return registry, requests, duration


# Durations on and around the bucket bounds, where `<=` against `<` would differ.
durations = st.one_of(
    st.sampled_from(BUCKETS),
    st.floats(min_value=0, max_value=5, allow_nan=False),
    st.just(0.0),
    st.just(1e9),
)
observations = st.lists(
    st.tuples(
        st.sampled_from(["/items/{id}", "/items", "<unmatched>"]),
        st.sampled_from(["GET", "POST"]),
        st.integers(min_value=0, max_value=5),
        durations,
        st.booleans(),  # scrape after this request
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(observations)
def test_scrapes_equal_prometheus_clients_own_per_request_updates(
    seen: list[tuple[str, str, int, float, bool]],
) -> None:
    metrics = RequestMetrics(CollectorRegistry(), BUCKETS)
    reference, requests, duration = _reference()
    for template, method, status_class, seconds, scrape in seen:
        metrics.observe(template, method, status_class, seconds)
        labels = (method, STATUS[status_class], template)
        requests.labels(*labels).inc()
        duration.labels(*labels).observe(seconds)
        if scrape:
            assert _same(_exposition(metrics.registry), _exposition(reference))
    assert _same(_exposition(metrics.registry), _exposition(reference))


def test_a_series_appears_with_its_first_request_not_its_first_scrape() -> None:
    metrics = RequestMetrics(CollectorRegistry(), BUCKETS)
    metrics.observe("/a", "GET", 2, 0.001)
    # Read without collecting the registry: the labelled children exist already.
    assert ("GET", "2xx", "/a") in metrics.requests._metrics
    assert (
        metrics.registry.get_sample_value(
            "http_requests_total", {"method": "GET", "status": "2xx", "handler": "/a"}
        )
        == 1.0
    )


def test_a_restricted_scrape_sees_every_request() -> None:
    # `?name[]=...` on prometheus_client's own server collects through a restricted registry.
    metrics = RequestMetrics(CollectorRegistry(), BUCKETS)
    for _ in range(5):
        metrics.observe("/a", "GET", 2, 0.02)
    restricted = metrics.registry.restricted_registry(["http_request_duration_seconds_count"])
    text = generate_latest(restricted).decode()  # type: ignore[arg-type]
    assert 'http_request_duration_seconds_count{handler="/a",method="GET",status="2xx"} 5.0' in (
        text
    )


def test_concurrent_requests_and_scrapes_lose_no_count() -> None:
    metrics = RequestMetrics(CollectorRegistry(), BUCKETS)
    threads, per_thread = 8, 5000
    stop = threading.Event()

    def serve() -> None:
        for n in range(per_thread):
            metrics.observe("/a", "GET", 2, 0.004 if n % 2 else 0.3)

    def scrape() -> None:
        while not stop.is_set():
            generate_latest(metrics.registry)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workers = [threading.Thread(target=serve) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    scraper.join()
    labels = {"method": "GET", "status": "2xx", "handler": "/a"}
    total = threads * per_thread
    sample = metrics.registry.get_sample_value
    assert sample("http_requests_total", labels) == total
    assert sample("http_request_duration_seconds_count", labels) == total
    assert sample("http_request_duration_seconds_bucket", {**labels, "le": "0.005"}) == total / 2
    assert sample("http_request_duration_seconds_bucket", {**labels, "le": "0.25"}) == total / 2
    assert sample("http_request_duration_seconds_bucket", {**labels, "le": "0.5"}) == total
    summed = sample("http_request_duration_seconds_sum", labels)
    assert summed is not None
    assert abs(summed - total / 2 * (0.004 + 0.3)) < 1e-6


def test_a_scrape_during_another_scrape_waits_for_the_counts_it_moves() -> None:
    # Two Prometheus servers (an HA pair) scrape at once: the second must not show totals
    # without the requests the first is adding to the metrics.
    metrics = RequestMetrics(CollectorRegistry(), BUCKETS)
    metrics.observe("/a", "GET", 2, 0.01)
    moving, release = threading.Event(), threading.Event()
    children_of = metrics._children_of

    def slow_children_of(key: tuple[str, str, int]) -> tuple[Any, Any]:
        if threading.current_thread().name == "first scrape":
            moving.set()
            release.wait(5)
        return children_of(key)

    metrics._children_of = slow_children_of  # type: ignore[method-assign]
    first = threading.Thread(target=metrics.flush, name="first scrape")
    first.start()
    assert moving.wait(5)
    labels = {"method": "GET", "status": "2xx", "handler": "/a"}
    seen: list[float | None] = []
    second = threading.Thread(
        target=lambda: seen.append(metrics.registry.get_sample_value("http_requests_total", labels))
    )
    second.start()
    second.join(0.2)  # without the wait, the second scrape is done by now, and saw 0
    release.set()
    first.join(5)
    second.join(5)
    assert seen == [1.0]


def test_a_name_already_taken_leaves_nothing_registered() -> None:
    registry = CollectorRegistry()
    taken = Counter("http_requests_total", "someone else's", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        RequestMetrics(registry, BUCKETS)
    registry.unregister(taken)
    RequestMetrics(registry, BUCKETS)  # a retry on the same registry works
