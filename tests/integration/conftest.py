"""Fixtures for the integration tests: they talk to the running lab's real services.

Run from the repository root with the controller venv:
    .venv/bin/pytest tests/integration -v
They skip (with the reason) when the lab or the app is not up: bring it up with
`./lab up` and deploy the app with `ansible-playbook playbooks/app.yml`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import ConstantReconnectionPolicy, DCAwareRoundRobinPolicy, TokenAwarePolicy

from .lab import (
    API_PORT,
    CQL_PORT,
    SHARED_KEYSPACE,
    Inventory,
    load_inventory,
    port_open,
)

# Figures the tests measured (latencies, counts, sums), printed after the run.
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    return load_inventory()


@pytest.fixture(scope="session")
def lab(inventory: Inventory) -> Inventory:
    """The lab inventory, once every app API and one CQL port per DC answer."""
    down = [
        f"{host} ({inventory.address(host)}:{API_PORT})"
        for host in inventory.app_hosts()
        if not port_open(inventory.address(host), API_PORT)
    ]
    if down:
        pytest.skip(
            f"checkout API not reachable on {', '.join(down)}: start the lab (./lab up) "
            "and deploy the app (ansible-playbook playbooks/app.yml)"
        )
    for dc, addresses in inventory.cassandra_by_dc().items():
        if not any(port_open(address, CQL_PORT) for address in addresses):
            pytest.skip(f"no Cassandra node of DC {dc} answers on {addresses} port {CQL_PORT}")
    return inventory


@pytest.fixture(scope="session")
def dc_sessions(lab: Inventory) -> Iterator[dict[str, Any]]:
    """One driver session per DC, pinned to that DC (DC-aware, no remote hosts), LOCAL_ONE."""
    clusters = []
    sessions: dict[str, Any] = {}
    for dc, addresses in lab.cassandra_by_dc().items():
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=dc, used_hosts_per_remote_dc=0)),
            consistency_level=ConsistencyLevel.LOCAL_ONE,
            request_timeout=15,
        )
        cluster = Cluster(
            addresses,
            port=CQL_PORT,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=15,
            protocol_version=5,
            # An earlier test stops a whole DC. A session pinned to it has no other node to
            # hear of its return from, and the default backoff left it blind for a minute.
            reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None),
        )
        clusters.append(cluster)
        sessions[dc] = cluster.connect(SHARED_KEYSPACE)
    yield sessions
    for cluster in clusters:
        cluster.shutdown()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("lab figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")
