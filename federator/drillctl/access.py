"""What every ``meshfed drill`` command needs before it does anything: the federation config,
the drills' namespace, the Drill document, a client of the home cluster and of the store.

Each failure exits with one line naming the option or the field and a code from the table in
``federator.drillctl.cli`` (2 for what the user gave, 1 for what the cluster answered).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml

from federator.core.config import FederationConfig
from federator.core.config_parse import load_config
from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import DrillSpec
from federator.drillctl.store import STORE_CA_ENV, STORE_ENV, STORE_TOKEN_ENV, StoreClient
from federator.drillctl.view import EXIT_BAD_SPEC
from federator.errors import ConfigError, DrillSpecError, FederatorError
from federator.kube.client import Credentials, KubeClient
from federator.kube.clusters import HOME, file_credentials, in_cluster_credentials

T = TypeVar("T")
DEFAULT_NAMESPACE = "meshfed-system"
"""The drills' namespace without a config: ``FederationConfig.namespace``'s default."""


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def config_of(path: Path | None, *, required: bool = False) -> FederationConfig | None:
    if path is None:
        if required:
            raise fail("--config is required: the drill is planned against its members", 2)
        return None
    try:
        return load_config(path)
    except FederatorError as exc:
        raise fail(str(exc), 2) from None


def namespace_of(config: FederationConfig | None, namespace: str | None) -> str:
    """``--namespace``, else the config's ``drills.namespace``, else its ``namespace``."""
    if namespace:
        return namespace
    if config is None:
        return DEFAULT_NAMESPACE
    return config.drills.namespace or config.namespace


def read_spec(path: Path) -> tuple[dict[str, Any], DrillSpec]:
    """The document and its spec; exits 2 with the field named when it is invalid."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise fail(f"--file {path}: {exc.strerror}", EXIT_BAD_SPEC) from None
    except yaml.YAMLError as exc:
        raise fail(f"--file {path} is not YAML: {exc}", EXIT_BAD_SPEC) from None
    try:
        return document, parse_drill(document)
    except DrillSpecError as exc:
        raise fail(f"{path}: {exc}", EXIT_BAD_SPEC) from None


def home_credentials(home_kubeconfig: Path | None, home_context: str | None) -> Credentials:
    """The home cluster's credentials (kubeconfig file, or in a Pod the service account)."""
    try:
        if home_kubeconfig is not None:
            return file_credentials(str(home_kubeconfig), home_context)
        return in_cluster_credentials()
    except (ConfigError, FederatorError) as exc:
        raise fail(
            f"the home cluster is needed (Drill objects live there): {exc}; pass --home-kubeconfig",
            2,
        ) from None


def home_client(home_kubeconfig: Path | None, home_context: str | None) -> KubeClient:
    return KubeClient(cluster=HOME, credentials=home_credentials(home_kubeconfig, home_context))


def store_client(url: str | None, config: FederationConfig | None = None) -> StoreClient | None:
    """The store at ``--store``, ``$MESHFED_STORE_URL`` or the config's ``drills.queryUrl``
    (where the controller evaluates guards); the bearer token from ``$MESHFED_STORE_TOKEN`` or
    the config's ``drills.tokenFile``; for HTTPS with a private CA, ``$MESHFED_STORE_CA`` or
    the config's ``drills.tls.caFile``, and its ``certFile``/``keyFile`` for mutual TLS."""
    drills = config.drills if config is not None else None
    url = url or os.environ.get(STORE_ENV) or (drills.query_url if drills else "")
    if not url:
        return None
    token = os.environ.get(STORE_TOKEN_ENV) or None
    if token is None and drills is not None and drills.token_file is not None:
        try:
            token = drills.token_file.read_text().strip() or None
        except OSError as exc:
            raise fail(f"drills.tokenFile {drills.token_file}: {exc.strerror}", 2) from None
    ca = os.environ.get(STORE_CA_ENV)
    if ca and not Path(ca).is_file():
        raise fail(f"${STORE_CA_ENV}: {ca} is not a readable file", 2)
    tls = drills.tls if drills is not None else None
    if not ca and tls is not None and tls.ca_file is not None:
        ca = str(tls.ca_file)
    cert = None
    if tls is not None and tls.cert_file is not None and tls.key_file is not None:
        cert = (str(tls.cert_file), str(tls.key_file))
    try:
        return StoreClient(url, token=token, ca=ca or None, cert=cert)
    except (OSError, ssl.SSLError) as exc:
        raise fail(
            f"the store's TLS files ({ca or ''} {cert or ''}) do not load: {exc}", 2
        ) from None


def with_home(
    home_kubeconfig: Path | None,
    home_context: str | None,
    body: Callable[[KubeClient], Awaitable[T]],
) -> T:
    client = home_client(home_kubeconfig, home_context)

    async def main() -> T:
        try:
            return await body(client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except FederatorError as exc:
        raise fail(str(exc)) from None
