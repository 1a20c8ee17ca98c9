"""R5, the apiserver's half of the write fence: a write whose body a pause delayed is dropped.

A leader can be stopped after its fence passed a request and before the request's bytes
left; when it resumes, they go out. The client sends the fence's server deadline as
``?timeout=``; the sandbox kube-apiserver counts it from the arrival of the request's head.
Here the pause is real in the way that matters: the fence's last check (right before the
body) blocks the whole process's event loop, then returns "may write", as a SIGSTOP landing
just after that check would. With a deadline shorter than the pause nothing is stored (504);
with a longer one the same request is carried out, so the case can fail.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from federator.core.model import ClusterId
from federator.errors import ApiRetryableError
from federator.kube.client import KubeClient
from federator.kube.clusters import file_credentials
from federator.kube.resources import SERVICE_ENTRIES
from tests.helpers.sandbox import RunningSandbox

PAUSE_SECONDS = 2.5
FIELD_MANAGER = "meshfed-deadline-test"


class PausedAfterLastCheck:
    """A ``WriteFence`` that always allows, and stops the process (the event loop and
    everything in it) for ``pause`` seconds at its third check of a request - the one right
    before the body is written - after deciding to allow it."""

    def __init__(self, server_deadline: float) -> None:
        self._deadline = server_deadline
        self.checks = 0

    def check(self, what: str) -> None:
        self.checks += 1
        if self.checks == 3:  # 1: before the request, 2: before its head, 3: before its body
            time.sleep(PAUSE_SECONDS)

    @property
    def server_deadline_seconds(self) -> float:
        return self._deadline


def _service_entry(name: str, address: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "hosts": [f"{name}.example.test"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "endpoints": [{"address": address}],
        },
    }


def _addresses(found: dict[str, Any] | None) -> list[str]:
    return [e["address"] for e in ((found or {}).get("spec") or {}).get("endpoints", [])]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("server_deadline", "carried_out"),
    [
        pytest.param(1.0, False, id="deadline-passes-during-pause-write-dropped"),
        pytest.param(20.0, True, id="deadline-outlives-pause-write-carried-out"),
    ],
)
async def test_write_delayed_past_its_server_deadline_is_not_stored(
    sandbox: RunningSandbox, server_deadline: float, carried_out: bool
) -> None:
    credentials = file_credentials(str(sandbox.kubeconfig), "c1")
    plain = KubeClient(cluster=ClusterId("c1"), credentials=credentials)
    fence = PausedAfterLastCheck(server_deadline)
    fenced = KubeClient(cluster=ClusterId("c1"), credentials=credentials, fence=fence)
    name = f"deadline-{uuid.uuid4().hex[:8]}"
    try:
        await plain.apply(_service_entry(name, "10.0.0.1"), field_manager=FIELD_MANAGER)
        before = await plain.get(SERVICE_ENTRIES, "default", name)

        if carried_out:
            await fenced.apply(_service_entry(name, "10.0.0.2"), field_manager=FIELD_MANAGER)
        else:
            with pytest.raises(ApiRetryableError) as refused:
                await fenced.apply(_service_entry(name, "10.0.0.2"), field_manager=FIELD_MANAGER)
            assert refused.value.status == 504, refused.value

        assert fence.checks == 3, "the pause was not taken between head and body"
        after = await plain.get(SERVICE_ENTRIES, "default", name)
        assert _addresses(after) == (["10.0.0.2"] if carried_out else ["10.0.0.1"])
        if not carried_out:
            assert after and before
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    finally:
        await fenced.aclose()
        gone = await plain.get(SERVICE_ENTRIES, "default", name)
        if gone:
            meta = gone["metadata"]
            await plain.delete(
                SERVICE_ENTRIES, "default", name,
                uid=meta["uid"], resource_version=meta["resourceVersion"],
            )  # fmt: skip
        await plain.aclose()
