from __future__ import annotations

import inspect
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from fastapi_chassis import (
    BodyLimitMiddleware,
    BodyLimitSettings,
    ChassisSettings,
    ConfigurationError,
    body_limit,
    build_app,
)
from tests.middleware.asgi import CHUNK, chunks, request

MiB = 1024 * 1024
NATIVE_ROUTE_LIMIT = "max_body_size" in inspect.signature(FastAPI.post).parameters
NATIVE_FORM_LIMITS = "form_limits" in inspect.signature(FastAPI.__init__).parameters


def limited_app(max_bytes: int | None = MiB) -> tuple[FastAPI, dict[str, int]]:
    """An app whose handlers record how many body bytes they saw."""
    app = build_app(ChassisSettings(body_limit=BodyLimitSettings(max_bytes=max_bytes)))
    seen: dict[str, int] = {"calls": 0, "bytes": 0}

    async def count(req: Request) -> dict[str, int]:
        seen["calls"] += 1
        total = 0
        async for piece in req.stream():
            total += len(piece)
            seen["bytes"] += len(piece)
        return {"bytes": total}

    @app.post("/stream")
    async def stream(req: Request) -> dict[str, int]:
        return await count(req)

    @app.post("/json")
    async def json_body(payload: dict[str, Any]) -> dict[str, int]:
        seen["calls"] += 1
        return {"keys": len(payload)}

    @app.post("/uploads")
    @body_limit(None)
    async def unlimited(req: Request) -> dict[str, int]:
        return await count(req)

    @app.post("/big")
    @body_limit(4 * MiB)
    async def bigger(req: Request) -> dict[str, int]:
        return await count(req)

    @app.post("/tiny")
    @body_limit(10)
    async def tiny(req: Request) -> dict[str, int]:
        return await count(req)

    @app.post("/ignores-body")
    async def ignores_body() -> dict[str, bool]:
        seen["calls"] += 1
        return {"ok": True}

    return app, seen


def assert_413(result: Any) -> None:
    assert result.status == 413
    assert result.header("content-type") == "application/problem+json"
    assert result.header("connection") == "close"
    body = result.json()
    assert body["status"] == 413
    assert body["code"] == "content_too_large"
    assert body["request_id"] == result.header("x-request-id")
    assert result.header("x-content-type-options") == "nosniff"


@pytest.mark.anyio
async def test_declared_50mb_body_gets_413_before_the_handler_runs() -> None:
    app, seen = limited_app()
    headers = [(b"content-length", str(50 * MiB).encode()), (b"content-type", b"application/json")]
    result = await request(app, "/json", method="POST", headers=headers, body=chunks(50 * MiB))
    assert_413(result)
    assert seen["calls"] == 0
    assert result.chunks_pulled == 0


@pytest.mark.anyio
async def test_chunked_50mb_body_is_cut_off_once_past_the_limit() -> None:
    app, seen = limited_app()
    result = await request(app, "/stream", method="POST", body=chunks(50 * MiB))
    assert_413(result)
    assert seen["bytes"] <= MiB
    # Memory stays proportional to one chunk: reading stopped right after the limit.
    assert result.chunks_pulled == MiB // CHUNK + 1


@pytest.mark.anyio
async def test_lying_content_length_is_counted_not_trusted() -> None:
    app, seen = limited_app()
    result = await request(
        app, "/stream", method="POST", headers=[(b"content-length", b"10")], body=chunks(5 * MiB)
    )
    assert_413(result)
    assert seen["bytes"] <= MiB
    assert result.bytes_pulled <= MiB + CHUNK


@pytest.mark.anyio
@pytest.mark.parametrize(
    "values",
    [[b"-1"], [b"abc"], [b"1e9"], [b""], [b"+5"], [b"5, 6"], [b"5", b"6"], [b"\xb2"]],
    ids=[
        "negative",
        "letters",
        "exponent",
        "empty",
        "plus-sign",
        "list-conflict",
        "two-headers",
        "latin1-superscript-two",
    ],
)
async def test_malformed_content_length_gets_400_problem(values: list[bytes]) -> None:
    app, seen = limited_app()
    headers = [(b"content-length", value) for value in values]
    result = await request(app, "/stream", method="POST", headers=headers, body=[b"hello"])
    assert result.status == 400
    assert result.header("content-type") == "application/problem+json"
    assert result.json()["code"] == "invalid_content_length"
    assert result.header("x-request-id")
    assert seen["calls"] == 0


@pytest.mark.anyio
async def test_identical_duplicate_content_lengths_are_accepted() -> None:
    app, _ = limited_app()
    result = await request(
        app, "/stream", method="POST", headers=[(b"content-length", b"5, 5")], body=[b"hello"]
    )
    assert result.status == 200
    assert result.json() == {"bytes": 5}


@pytest.mark.anyio
async def test_absurdly_long_content_length_is_too_large_not_a_crash() -> None:
    app, _ = limited_app()
    result = await request(
        app, "/stream", method="POST", headers=[(b"content-length", b"9" * 5000)], body=[b"x"]
    )
    assert_413(result)


def test_body_at_the_limit_passes_and_one_byte_more_does_not() -> None:
    app, _ = limited_app(max_bytes=100)
    with TestClient(app) as client:
        assert client.post("/stream", content=b"x" * 100).json() == {"bytes": 100}
        over = client.post("/stream", content=b"x" * 101)
        assert over.status_code == 413
        assert over.headers["content-type"] == "application/problem+json"


def test_route_declarations_raise_lower_and_remove_the_limit() -> None:
    app, _ = limited_app(max_bytes=1000)
    with TestClient(app) as client:
        assert client.post("/uploads", content=b"x" * (6 * MiB)).json() == {"bytes": 6 * MiB}
        assert client.post("/big", content=b"x" * (3 * MiB)).json() == {"bytes": 3 * MiB}
        assert client.post("/big", content=b"x" * (5 * MiB)).status_code == 413
        assert client.post("/tiny", content=b"x" * 11).status_code == 413
        assert client.post("/stream", content=b"x" * 1001).status_code == 413


def test_response_of_a_handler_that_never_reads_an_oversized_body_is_replaced() -> None:
    app, _ = limited_app(max_bytes=10)
    with TestClient(app) as client:
        response = client.post("/ignores-body", content=b"x" * 100)
    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"
    assert response.headers["connection"] == "close"


def test_multipart_upload_over_the_limit_gets_413() -> None:
    app = build_app(ChassisSettings(body_limit=BodyLimitSettings(max_bytes=1000)))

    @app.post("/form")
    async def form(req: Request) -> dict[str, int]:
        return {"fields": len(await req.form())}

    with TestClient(app) as client:
        small = client.post("/form", files={"f": ("a.txt", b"x" * 10)})
        assert small.json() == {"fields": 1}
        big = client.post("/form", files={"f": ("a.txt", b"x" * 5000)})
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"


def test_middleware_alone_on_a_plain_app_answers_problem_json() -> None:
    app = FastAPI()
    app.add_middleware(BodyLimitMiddleware, max_bytes=10)

    @app.post("/p")
    async def p(payload: dict[str, str]) -> dict[str, str]:
        return payload

    with TestClient(app) as client:
        assert client.post("/p", json={"a": "b"}).json() == {"a": "b"}
        response = client.post("/p", json={"a": "b" * 50})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.anyio
async def test_websocket_and_lifespan_scopes_pass_through_untouched() -> None:
    calls: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])
        assert "starlette.max_body_size" not in scope

    middleware = BodyLimitMiddleware(inner, max_bytes=1)

    async def nothing() -> Any:
        return {}

    async def ignore(message: Any) -> None:
        return None

    await middleware({"type": "websocket", "headers": []}, nothing, ignore)
    await middleware({"type": "lifespan"}, nothing, ignore)
    assert calls == ["websocket", "lifespan"]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_invalid_limits_are_configuration_errors(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="whole number of bytes"):
        body_limit(bad)
    with pytest.raises(ConfigurationError, match="CHASSIS_BODY_LIMIT__MAX_BYTES"):
        BodyLimitMiddleware(FastAPI(), max_bytes=bad)


def test_disabled_body_limit_adds_no_middleware() -> None:
    app = build_app(ChassisSettings(body_limit=BodyLimitSettings(enabled=False)))
    assert all(m.cls is not BodyLimitMiddleware for m in app.user_middleware)


@pytest.mark.skipif(not NATIVE_ROUTE_LIMIT, reason="this FastAPI has no route max_body_size=")
def test_native_route_max_body_size_nests_and_answers_problem_json() -> None:
    app = build_app(ChassisSettings(body_limit=BodyLimitSettings(max_bytes=1000)))

    @app.post("/native-small", max_body_size=10)  # type: ignore[call-arg, unused-ignore]
    async def small(payload: dict[str, str]) -> dict[str, str]:
        return payload

    @app.post("/native-big", max_body_size=4 * MiB)  # type: ignore[call-arg, unused-ignore]
    async def big(req: Request) -> dict[str, int]:
        return {"bytes": len(await req.body())}

    @app.post("/native-ignores", max_body_size=10)  # type: ignore[call-arg, unused-ignore]
    async def ignores() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        assert client.post("/native-big", content=b"x" * (2 * MiB)).json() == {"bytes": 2 * MiB}
        for path, size in (
            ("/native-small", 50),
            ("/native-big", 5 * MiB),
            ("/native-ignores", 50),
        ):
            response = client.post(path, content=b"{" + b" " * size + b"}")
            assert response.status_code == 413, path
            assert response.headers["content-type"] == "application/problem+json", path
            assert response.headers["connection"] == "close"
            assert response.json()["request_id"] == response.headers["x-request-id"]


@pytest.mark.skipif(not NATIVE_ROUTE_LIMIT, reason="this FastAPI has no app max_body_size=")
def test_fastapi_app_level_max_body_size_with_chassis_limit_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CHASSIS_BODY_LIMIT__MAX_BYTES"):
        build_app(ChassisSettings(), max_body_size=10)


@pytest.mark.skipif(not NATIVE_FORM_LIMITS, reason="this FastAPI has no form_limits")
def test_form_field_limit_from_settings_applies_to_automatic_form_parsing() -> None:
    from fastapi import Form

    app = build_app(ChassisSettings(body_limit=BodyLimitSettings(max_form_fields=2)))

    @app.post("/form")
    async def form(a: str = Form(), b: str = Form()) -> dict[str, str]:
        return {"a": a, "b": b}

    with TestClient(app) as client:
        assert client.post("/form", data={"a": "1", "b": "2"}).status_code == 200
        too_many = client.post("/form", data={"a": "1", "b": "2", "c": "3"})
    assert too_many.status_code == 400


@pytest.mark.skipif(NATIVE_FORM_LIMITS, reason="this FastAPI supports form_limits")
def test_form_limits_on_a_fastapi_without_them_are_refused_at_startup() -> None:
    with pytest.raises(ConfigurationError, match="CHASSIS_BODY_LIMIT__MAX_FORM_FILES"):
        build_app(ChassisSettings(body_limit=BodyLimitSettings(max_form_files=1)))


def test_without_a_global_limit_route_limits_still_apply() -> None:
    app, _ = limited_app(max_bytes=None)
    with TestClient(app) as client:
        assert client.post("/stream", content=b"x" * (3 * MiB)).json() == {"bytes": 3 * MiB}
        assert client.post("/tiny", content=b"x" * 11).status_code == 413


@pytest.mark.anyio
@pytest.mark.parametrize("in_task_group", [False, True], ids=["direct", "task-group"])
async def test_raw_asgi_app_that_lets_the_error_escape_still_gets_a_413(
    in_task_group: bool,
) -> None:
    import anyio

    async def drain(receive: Receive) -> None:
        while (await receive()).get("more_body"):
            pass

    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        if in_task_group:
            async with anyio.create_task_group() as group:
                group.start_soon(drain, receive)
        else:
            await drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    result = await request(
        BodyLimitMiddleware(reader, max_bytes=100), method="POST", body=chunks(1000, 10)
    )
    assert result.status == 413
    assert result.header("connection") == "close"
    assert result.json()["detail"] == "the request body exceeds the limit of 100 bytes"
    assert result.bytes_pulled == 110


@settings(max_examples=60, deadline=None)
@given(value=st.binary(max_size=30) | st.from_regex(rb"\A[0-9 ,\t]{1,25}\Z"))
def test_any_content_length_value_gets_a_clean_answer_never_a_crash(value: bytes) -> None:
    import anyio

    app, seen = limited_app(max_bytes=100)
    result = anyio.run(
        lambda: request(
            app, "/stream", method="POST", headers=[(b"content-length", value)], body=[b"x" * 5]
        )
    )
    parts = [p.strip(b" \t") for p in value.split(b",")]
    numbers = {int(p) for p in parts if p.isdigit()}
    if not all(p.isdigit() for p in parts) or len(numbers) != 1:
        assert result.status == 400
        assert seen["calls"] == 0
    elif numbers.pop() > 100:
        assert result.status == 413
    else:
        assert result.status == 200


_header_names = st.sampled_from([b"content-length", b"content-type", b"x-other"])
_header_values = st.binary(max_size=25) | st.from_regex(rb"\A[0-9 ,\t]{1,25}\Z")


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_header_names, _header_values), max_size=5))
def test_content_length_fast_path_agrees_with_the_full_parser(
    headers: list[tuple[bytes, bytes]],
) -> None:
    # A list of headers takes the C-level fast path; any other iterable the full parser.
    from fastapi_chassis.middleware.body_limit import _declared_length, _Malformed

    def parse(value: Any) -> int | str | None:
        try:
            return _declared_length(value)
        except _Malformed:
            return "malformed"

    assert parse(headers) == parse(iter(headers))
