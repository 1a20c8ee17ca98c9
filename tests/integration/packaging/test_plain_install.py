"""A plain ``pip install`` of the wheel serves telemetry: ``meshfed collect`` for real.

``--help`` and ``--check`` import little; this starts the collector of a fresh venv (plain
``pip install`` of the wheel, no install script) on free loopback ports, sends one OTLP/HTTP
export and reads it back with PromQL. It catches another distribution replacing the
``opentelemetry.proto`` modules the OTLP receivers need (``xds-protos`` ships an old copy:
it is the optional ``mesh`` extra for that reason), and checks that ``meshfed mesh`` without
that extra says how to install it instead of failing with a traceback.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.integration.packaging.conftest import Venv, run

# The first test pays for the package's build, the PyPI download and a fresh venv: minutes
# on a loaded 2-core machine, more than the suite's per-test default.
pytestmark = pytest.mark.timeout(1800)


def _gauge_export(job: str, value: float) -> bytes:
    """One OTLP metrics export: gauge ``packaging.probe`` of service ``job``, now."""
    point = NumberDataPoint(time_unix_nano=time.time_ns(), as_double=value)
    metric = Metric(name="packaging.probe", gauge=Gauge(data_points=[point]))
    service = KeyValue(key="service.name", value=AnyValue(string_value=job))
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=[service]),
                scope_metrics=[ScopeMetrics(metrics=[metric])],
            )
        ]
    )
    return request.SerializeToString()


@pytest.fixture(scope="module")
def collector(plain_venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The plain venv's ``meshfed collect`` on free loopback ports; yields the OTLP/HTTP and
    query addresses as ``otlp_http|http``."""
    data = tmp_path_factory.mktemp("collect")
    http, otlp_http, otlp_grpc = (f"127.0.0.1:{free_port()}" for _ in range(3))
    log = data / "collect.log"
    argv = [
        plain_venv.meshfed, "collect", "--data-dir", data, "--http", http,
        "--otlp-http", otlp_http, "--otlp-grpc", otlp_grpc,
        "--disable", "statsd", "--disable", "forward", "--disable", "pull",
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http_ok(f"http://{http}/-/ready", proc, what="meshfed collect", log=log)
        yield f"{otlp_http}|{http}"
    finally:
        stop(proc, timeout_s=20)


def test_collect_stores_an_otlp_export_and_answers_promql(collector: str) -> None:
    otlp_http, http = collector.split("|")
    job = f"pkg-{uuid.uuid4().hex[:8]}"
    sent = httpx.post(
        f"http://{otlp_http}/v1/metrics",
        content=_gauge_export(job, 42.5),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    query = f'packaging_probe{{job="{job}"}}'
    result: list[dict[str, object]] = []
    deadline = time.monotonic() + 20  # bounded: the pipeline flushes in batches
    while not result and time.monotonic() < deadline:
        answer = httpx.get(f"http://{http}/api/v1/query", params={"query": query}, timeout=10)
        assert answer.status_code == 200, answer.text
        result = answer.json()["data"]["result"]
        if not result:
            time.sleep(0.3)
    assert [r["value"][1] for r in result] == ["42.5"], f"{query} -> {result}"  # type: ignore[index]


def test_plain_install_has_no_envoy_api(plain_venv: Venv) -> None:
    done = run([plain_venv.python, "-c", "import importlib.util as u; print(u.find_spec('envoy'))"])
    assert done.stdout.strip() == "None", "xds-protos belongs to the mesh extra only"


def test_mesh_without_the_extra_names_the_fix(plain_venv: Venv, tmp_path: Path) -> None:
    done = subprocess.run(
        [plain_venv.meshfed, "mesh", "inspect", "--xds", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pip install 'meshfed[mesh]'" in done.stderr
    assert "Traceback" not in done.stderr
