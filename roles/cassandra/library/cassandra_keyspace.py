#!/usr/bin/python
"""Ansible module: ensure a keyspace exists with NetworkTopologyStrategy replication."""

from __future__ import annotations

DOCUMENTATION = r"""
module: cassandra_keyspace
short_description: Ensure a Cassandra keyspace uses NetworkTopologyStrategy with given per-DC factors.
description:
  - Reads the keyspace's replication from system_schema and alters (or creates) it only when it differs.
  - Runs where the Python Cassandra driver is installed (the role's tools venv on the node).
options:
  name: {description: Keyspace name., type: str, required: true}
  replication: {description: Replication factor per DC., type: dict, required: true}
  host: {description: Address of a node's native transport., type: str, required: true}
  port: {description: Native transport port., type: int, default: 9042}
  create: {description: Create the keyspace when it is missing., type: bool, default: false}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

NTS = "org.apache.cassandra.locator.NetworkTopologyStrategy"


def _current(session: Any, name: str) -> dict[str, str] | None:
    row = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (name,)).one()
    return dict(row.replication) if row else None


def _wanted(replication: dict[str, Any]) -> dict[str, str]:
    wanted = {dc: str(int(rf)) for dc, rf in replication.items()}
    wanted["class"] = NTS
    return wanted


def _cql_map(replication: dict[str, Any]) -> str:
    pairs = ", ".join(f"'{dc}': {int(rf)}" for dc, rf in sorted(replication.items()))
    return f"{{'class': 'NetworkTopologyStrategy', {pairs}}}"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "replication": {"type": "dict", "required": True},
            "host": {"type": "str", "required": True},
            "port": {"type": "int", "default": 9042},
            "create": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        from cassandra.cluster import Cluster
    except ImportError:
        module.fail_json(msg="The Python Cassandra driver is missing; run the module with the tools venv's python.")

    params = module.params
    name, replication = params["name"], params["replication"]
    cluster = Cluster([params["host"]], port=params["port"], connect_timeout=15)
    try:
        session = cluster.connect()
        before = _current(session, name)
        wanted = _wanted(replication)
        if before == wanted:
            module.exit_json(changed=False, replication=before)
        if before is None and not params["create"]:
            module.fail_json(msg=f"Keyspace {name} does not exist and create is false.")
        if not module.check_mode:
            verb = "CREATE KEYSPACE IF NOT EXISTS" if before is None else "ALTER KEYSPACE"
            session.execute(f'{verb} "{name}" WITH replication = {_cql_map(replication)}', timeout=60)
        module.exit_json(changed=True, replication=wanted, diff={"before": before or {}, "after": wanted})
    except Exception as exc:  # the driver raises many types; report any with context
        module.fail_json(msg=f"Cassandra at {params['host']}:{params['port']} refused keyspace {name}: {exc}")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
