"""``meshfed loadgen``'s option parsing and the settings' validation: bad input is refused
with a message naming the field and the fix."""

from __future__ import annotations

from dataclasses import replace

import pytest
import typer

from meshfed.loadgen.cli import parse_headers, parse_istiods
from meshfed.loadgen.generator import Hop, LoadSettings, Place

pytestmark = pytest.mark.unit

BASE = LoadSettings(
    origin="c1",
    places=(Place("c1", "127.0.0.1:15010"),),
    chain=(Hop("reviews", "reviews.default.svc.clusterset.local"),),
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("end-user=jason", (("end-user", "jason"),), id="one-header"),
        pytest.param("End-User=jason, x-a=b", (("end-user", "jason"), ("x-a", "b")), id="two"),
        pytest.param("", (), id="empty-set"),
    ],
)
def test_parse_headers(value: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_headers(value) == expected


@pytest.mark.parametrize(
    "value", [pytest.param("jason", id="no-equals"), pytest.param("=x", id="no-name")]
)
def test_bad_headers_name_the_option(value: str) -> None:
    with pytest.raises(typer.BadParameter, match="--headers"):
        parse_headers(value)


def test_parse_istiods() -> None:
    assert parse_istiods(["c2=127.0.0.1:15110"]) == (Place("c2", "127.0.0.1:15110"),)
    with pytest.raises(typer.BadParameter, match="NAME=HOST:PORT"):
        parse_istiods(["c2"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"rate": 0.0}, "rate=0.0", id="rate-zero"),
        pytest.param({"seconds": -1.0}, "seconds=-1.0", id="negative-seconds"),
        pytest.param({"max_requests": 0}, "max_requests=0", id="no-requests"),
        pytest.param({"chain": ()}, "chain is empty", id="empty-chain"),
        pytest.param({"origin": "c9"}, "origin='c9'", id="unknown-origin"),
        pytest.param({"header_sets": ()}, "header_sets is empty", id="no-header-sets"),
    ],
)
def test_settings_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match="load generator settings") as err:
        replace(BASE, **change).validate()  # type: ignore[arg-type]
    assert field in str(err.value)


def test_valid_settings_pass() -> None:
    BASE.validate()
