"""Request metrics: labelled by route template, bounded, parsed back with prometheus-client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from httpx import ASGITransport, AsyncClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from patterns.errors import ServiceUnavailableError, install_error_handlers
from patterns.observability.logging import reset_logging
from patterns.observability.metrics import UNMATCHED, HttpMetrics
from patterns.observability.middleware import install_observability
from patterns.observability.request_id import RequestIdMiddleware
from reference_app.core.config import Settings
from reference_app.core.metrics import REGISTRATIONS
from reference_app.main import create_app

Labels = frozenset[tuple[str, str]]


def samples(text: str, sample_name: str) -> dict[Labels, float]:
    """Values of one sample series, keyed by label set, from an exposition parsed by the client's
    own parser."""
    out: dict[Labels, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name:
                out[frozenset(sample.labels.items())] = sample.value
    return out


def labels(**kw: str) -> Labels:
    return frozenset(kw.items())


def _instrumented_app(metrics: HttpMetrics, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_observability(app, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items")
    async def create_item() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418)

    @app.get("/boom/{n}")
    async def boom(n: int) -> None:
        raise RuntimeError(f"boom {n}")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailableError()

    @app.get("/in-progress")
    async def in_progress() -> dict[str, float | None]:
        return {"value": registry.get_sample_value("http_requests_in_progress", {"method": "GET"})}

    orders = APIRouter(prefix="/orders")

    @orders.get("/{order_id}")
    async def get_order(order_id: int) -> dict[str, int]:
        return {"id": order_id}

    v1 = APIRouter()
    v1.include_router(orders)
    app.include_router(v1, prefix="/api/v1")

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["slug"])

    app.add_route("/plain/{slug}", plain)

    sub = FastAPI()

    @sub.get("/reports/{report_id}")
    async def report(report_id: int) -> dict[str, int]:
        return {"id": report_id}

    app.mount("/tenants/{tenant}", sub)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> HttpMetrics:
    return HttpMetrics(registry)


@pytest.fixture
async def api(metrics: HttpMetrics, registry: CollectorRegistry) -> AsyncIterator[AsyncClient]:
    app = _instrumented_app(metrics, registry)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.fixture(autouse=True)
def _no_logging_left_behind() -> Iterator[None]:
    yield
    reset_logging()


def _exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_known_sequence_is_counted_by_method_route_template_and_status(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    for item_id in (1, 2, 3):
        await api.get(f"/items/{item_id}")
    await api.get("/items/not-a-number")
    await api.post("/items")
    await api.post("/items")
    await api.delete("/items/4")
    await api.get("/teapot")
    await api.get("/no/such/path")

    counts = samples(_exposition(registry), "http_request_duration_seconds_count")
    assert counts == {
        labels(method="GET", endpoint="/items/{item_id}", status="200"): 3,
        labels(method="GET", endpoint="/items/{item_id}", status="422"): 1,
        labels(method="POST", endpoint="/items", status="200"): 2,
        labels(method="DELETE", endpoint="/items/{item_id}", status="405"): 1,
        labels(method="GET", endpoint="/teapot", status="418"): 1,
        labels(method="GET", endpoint=UNMATCHED, status="404"): 1,
    }


async def test_histogram_buckets_and_sum_describe_the_same_requests(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    for item_id in range(5):
        await api.get(f"/items/{item_id}")
    text = _exposition(registry)
    key = labels(method="GET", endpoint="/items/{item_id}", status="200")
    buckets = {
        dict(k)["le"]: v
        for k, v in samples(text, "http_request_duration_seconds_bucket").items()
        if key <= k
    }
    assert buckets["+Inf"] == 5
    assert samples(text, "http_request_duration_seconds_sum")[key] > 0


async def test_unhandled_exception_counts_as_an_error_by_type_and_route_template(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    assert (await api.get("/boom/1")).status_code == 500
    assert (await api.get("/boom/2")).status_code == 500
    text = _exposition(registry)
    assert samples(text, "app_errors_total") == {
        labels(error_type="RuntimeError", endpoint="/boom/{n}"): 2
    }
    counts = samples(text, "http_request_duration_seconds_count")
    assert counts[labels(method="GET", endpoint="/boom/{n}", status="500")] == 2


async def test_a_5xx_app_error_counts_under_its_class_and_client_errors_do_not_count(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    assert (await api.get("/unavailable")).status_code == 503
    await api.get("/teapot")
    await api.get("/items/nope")
    await api.get("/missing")
    assert samples(_exposition(registry), "app_errors_total") == {
        labels(error_type="ServiceUnavailableError", endpoint="/unavailable"): 1
    }


async def test_in_progress_gauge_counts_the_request_being_served(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    r = await api.get("/in-progress")
    assert r.json() == {"value": 1.0}
    gauge = samples(_exposition(registry), "http_requests_in_progress")
    assert gauge == {labels(method="GET"): 0}


async def test_unknown_methods_share_one_label_value(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    for method in ("FOO", "BAR", "PROPFIND"):
        await api.request(method, "/items/1")
    counts = samples(_exposition(registry), "http_request_duration_seconds_count")
    assert {dict(k)["method"] for k in counts} == {"other"}


async def test_route_in_a_mounted_app_is_labelled_with_the_joined_template(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    for tenant, report in (("acme", 1), ("globex", 2)):
        assert (await api.get(f"/tenants/{tenant}/reports/{report}")).status_code == 200
    counts = samples(_exposition(registry), "http_request_duration_seconds_count")
    assert counts == {
        labels(method="GET", endpoint="/tenants/{tenant}/reports/{report_id}", status="200"): 2
    }


async def test_routes_of_included_routers_are_labelled_with_their_full_template(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    # FastAPI keeps an included route's own path without the prefixes; the label must not.
    for order_id in (1, 2):
        assert (await api.get(f"/api/v1/orders/{order_id}")).status_code == 200
    assert (await api.get("/plain/hello")).status_code == 200
    counts = samples(_exposition(registry), "http_request_duration_seconds_count")
    assert counts == {
        labels(method="GET", endpoint="/api/v1/orders/{order_id}", status="200"): 2,
        labels(method="GET", endpoint="/plain/{slug}", status="200"): 1,
    }


async def test_health_probes_are_not_measured(
    api: AsyncClient, registry: CollectorRegistry
) -> None:
    await api.get("/health/live")
    assert samples(_exposition(registry), "http_request_duration_seconds_count") == {}


# The app built by create_app: metrics live on the process-wide registry, so these tests compare
# the exposition before and after, and name routes no other test uses.


@pytest.fixture
async def kit_api() -> AsyncIterator[AsyncClient]:
    app = create_app(Settings(env="test"))

    async def get_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app.add_api_route("/api/v1/things/{thing_id}", get_thing, methods=["GET"])
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def _metrics(client: AsyncClient) -> str:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_a_thousand_distinct_ids_make_one_label_set(kit_api: AsyncClient) -> None:
    template = "/api/v1/things/{thing_id}"
    before = samples(await _metrics(kit_api), "http_request_duration_seconds_count")
    for thing_id in range(1, 1001):
        assert (await kit_api.get(f"/api/v1/things/{thing_id}")).status_code == 200
    after = samples(await _metrics(kit_api), "http_request_duration_seconds_count")

    things = {k: v for k, v in after.items() if "things" in dict(k)["endpoint"]}
    key = labels(method="GET", endpoint=template, status="200")
    assert list(things) == [key]
    assert things[key] - before.get(key, 0) == 1000


async def test_metrics_and_health_requests_are_not_in_the_request_metrics(
    kit_api: AsyncClient,
) -> None:
    await _metrics(kit_api)
    await kit_api.get("/health/live")
    text = await _metrics(kit_api)
    endpoints = {dict(k)["endpoint"] for k in samples(text, "http_request_duration_seconds_count")}
    assert not {e for e in endpoints if e == "/metrics" or e.startswith("/health")}


async def test_business_counters_are_exposed_under_their_names(kit_api: AsyncClient) -> None:
    before = samples(await _metrics(kit_api), "user_registrations_total")[frozenset()]
    REGISTRATIONS.inc()
    after = samples(await _metrics(kit_api), "user_registrations_total")[frozenset()]
    assert after == before + 1


async def test_metrics_speak_openmetrics_when_the_scraper_asks(kit_api: AsyncClient) -> None:
    r = await kit_api.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize(("otel", "asks"), [(False, False), (True, True)])
async def test_fastapis_opentelemetry_is_consulted_only_when_the_setting_asks(
    otel: bool, asks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI looks for a configured OpenTelemetry provider on every request (about 5 µs); the
    kit's own metrics and access line cover each request, so it looks only with KIT_OTEL=true."""
    from opentelemetry import trace  # FastAPI's own dependency; it asks `trace` each time

    looked: list[bool] = []
    real = trace.get_tracer_provider

    def spy() -> object:
        looked.append(True)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", spy)
    app = create_app(Settings(env="test", otel=otel))
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/health/live")).status_code == 200
    finally:
        reset_logging()
    assert bool(looked) is asks
