"""The meshfed Helm chart in tests: run the ``helm`` that ``make setup`` built, render the
chart into objects, and the RBAC it ships (the federator tests bind the same rules the chart
installs, so the rules exercised there are the ones users get).

Helm keeps its own state under ``$MESHFED_CACHE/helm`` here, not in the user's home.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from meshfed.sandbox.components import MissingBinaryError, cache_dir, find_helm
from tests.helpers.paths import REPO_ROOT

CHART = REPO_ROOT / "deploy" / "multicluster" / "charts" / "meshfed"
CI_VALUES = CHART / "ci"
"""Value sets the chart is linted, rendered and dry-run applied with (chart-testing's layout)."""
MEMBER_ACCOUNT = "meshfed-member"
"""The ServiceAccount of mode=member (``member.serviceAccount.name``)."""
RBAC_KINDS = frozenset(
    {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
)


def helm(
    *args: str,
    kubeconfig: Path | None = None,
    context: str | None = None,
    check: bool = True,
    timeout: float = 180.0,
) -> subprocess.CompletedProcess[str]:
    """Run helm; ``check``: fail with its stderr on a non-zero exit. A missing binary fails
    with the command that builds it (never a skip)."""
    try:
        binary = find_helm()
    except MissingBinaryError as exc:
        raise AssertionError(str(exc)) from exc
    state = cache_dir() / "helm"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(state / "cache"),
        "HELM_CONFIG_HOME": str(state / "config"),
        "HELM_DATA_HOME": str(state / "data"),
    }
    cluster = [f"--kubeconfig={kubeconfig}"] if kubeconfig else []
    cluster += [f"--kube-context={context}"] if context else []
    out = subprocess.run(
        [str(binary), *args, *cluster],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


def value_args(
    values_files: Sequence[Path] = (), values: Mapping[str, Any] | None = None
) -> list[str]:
    """``-f`` per file, then ``--set-json`` per leaf of ``values`` (merged over the files,
    as a values file would be: a map is never replaced wholesale)."""
    args = [f"--values={f}" for f in values_files]
    return args + [f"--set-json={path}={json.dumps(leaf)}" for path, leaf in _leaves(values or {})]


def _leaves(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        path = prefix + key.replace(".", "\\.")
        if isinstance(value, Mapping) and value:
            out += _leaves(value, path + ".")
        else:
            out.append((path, value))
    return out


def render(
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "meshfed",
    namespace: str = "meshfed-system",
) -> list[dict[str, Any]]:
    """``helm template`` of the chart as a list of objects."""
    out = helm(
        "template", release, str(CHART), f"--namespace={namespace}",
        *value_args(values_files, values),
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def member_rbac(namespace: str = "meshfed-system", **member: Any) -> list[dict[str, Any]]:
    """The member-cluster RBAC (mode=member, release ``meshfed-member``); ``member``: values
    of the ``member`` section (``drills={"enabled": True}``)."""
    values: dict[str, Any] = {"mode": "member"}
    if member:
        values["member"] = member
    docs = render(values=values, release="meshfed-member", namespace=namespace)
    return [d for d in docs if d["kind"] in RBAC_KINDS]


def find(docs: Sequence[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any]:
    """The one rendered object of ``kind`` named ``name``."""
    [obj] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def config_file(docs: Sequence[Mapping[str, Any]], name: str, key: str) -> dict[str, Any]:
    """The YAML file ``key`` of the rendered ConfigMap ``name``, parsed."""
    parsed: dict[str, Any] = yaml.safe_load(find(docs, "ConfigMap", name)["data"][key])
    return parsed
