"""The pure leader-election decisions: who may take the Lease, the record written, the tenure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federator.core.election import (
    LeaseRecord,
    Observation,
    Tenure,
    claim,
    lease_spec,
    observe,
    record_of,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
OTHER = LeaseRecord("b", 15, T0, T0, 3)


@pytest.mark.parametrize(
    ("current", "observation", "now", "expected"),
    [
        pytest.param(None, None, 0.0, LeaseRecord("a", 15, T1, T1, 0), id="no-lease-create"),
        pytest.param(
            LeaseRecord("a", 15, T0, T0, 2),
            Observation(LeaseRecord("a", 15, T0, T0, 2), 0.0),
            100.0,
            LeaseRecord("a", 15, T0, T1, 2),
            id="own-lease-renewed-keeps-acquire-time",
        ),
        pytest.param(OTHER, Observation(OTHER, 10.0), 24.9, None, id="other-holder-still-valid"),
        pytest.param(
            OTHER, Observation(OTHER, 10.0), 25.0, LeaseRecord("a", 15, T1, T1, 4), id="expired"
        ),
        pytest.param(OTHER, None, 1000.0, None, id="never-observed-is-not-expired"),
        pytest.param(
            LeaseRecord("", 1, T0, T0, 3),
            Observation(LeaseRecord("", 1, T0, T0, 3), 0.0),
            0.0,
            LeaseRecord("a", 15, T1, T1, 4),
            id="released-taken-at-once",
        ),
    ],
)
def test_claim(
    current: LeaseRecord | None,
    observation: Observation | None,
    now: float,
    expected: LeaseRecord | None,
) -> None:
    got = claim(
        identity="a",
        current=current,
        observation=observation,
        now=now,
        wall=T1,
        lease_duration_seconds=15,
    )
    assert got == expected


def test_observation_clock_restarts_only_when_the_record_changes() -> None:
    first = observe(None, OTHER, 5.0)
    assert observe(first, OTHER, 9.0).observed_at == 5.0
    renewed = LeaseRecord("b", 15, T0, T1, 3)
    assert observe(first, renewed, 9.0) == Observation(renewed, 9.0)


def test_lease_spec_round_trips() -> None:
    record = LeaseRecord("a", 15, T0, T1, 7)
    assert record_of({"spec": lease_spec(record)}) == record


@pytest.mark.parametrize(
    ("now", "valid"),
    [pytest.param(109.9, True, id="inside"), pytest.param(110.0, False, id="deadline")],
)
def test_tenure_lasts_renew_deadline_from_the_renewal_sent(now: float, valid: bool) -> None:
    assert Tenure(renewed_at=100.0, renew_deadline=10.0).valid(now) is valid
