"""Every ``kind: Drill`` example in docs/drills.md parses, so the reference cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from federator.core.drills.parse import parse_drill
from federator.core.drills.render import render_step
from federator.core.model import ClusterId

DOC = Path(__file__).resolve().parents[5] / "docs" / "drills.md"
BLOCKS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    if "kind: Drill" in block and "<DNS label" not in block
]


def test_the_page_has_one_example_per_step_kind() -> None:
    kinds = {step.kind for b in BLOCKS for step in parse_drill(yaml.safe_load(b)).steps}
    assert kinds == {"drain", "delay", "abort", "shift", "route"}


@pytest.mark.parametrize("block", [pytest.param(b, id=yaml.safe_load(b)["metadata"]["name"])
                                   for b in BLOCKS])  # fmt: skip
def test_example_parses_and_renders(block: str) -> None:
    spec = parse_drill(yaml.safe_load(block))
    hosts = {k: f"{k.name}.{k.namespace}.svc.clusterset.local" for k in spec.services}
    for index, step in enumerate(spec.steps):
        rendered = render_step(spec, index, target=ClusterId("c1"), hosts=hosts)
        assert len(rendered) == (0 if step.kind == "drain" else len(spec.step_services(step)))
