"""Both inventories resolve and every playbook parses against them."""

from __future__ import annotations

import configparser

import pytest
import yaml

from tests.conftest import LAB_INVENTORY, PRODUCTION_INVENTORY, ROOT, group_hosts, run

INVENTORIES = [LAB_INVENTORY, PRODUCTION_INVENTORY]
CHAOS = ROOT / "playbooks" / "chaos"
PLAYBOOKS = [
    ROOT / "site.yml",
    *sorted((ROOT / "playbooks").glob("*.yml")),
    *sorted(p for p in CHAOS.glob("*.yml") if p.name != "services.yml"),  # services.yml: their vars
]


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda p: p.parent.name)
def test_inventory_graph_has_every_group(inventory) -> None:
    graph = run(["ansible-inventory", "-i", str(inventory), "--graph"], check=True).stdout
    for group in ("cassandra", "kafka", "app", "monitoring", "yangon", "mandalay", "naypyitaw"):
        assert f"@{group}:" in graph, graph


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_syntax(inventory, playbook) -> None:
    run(["ansible-playbook", "-i", str(inventory), "--syntax-check", str(playbook)], check=True)


def test_production_has_three_cassandra_nodes_per_region() -> None:
    for region in ("yangon", "mandalay", "naypyitaw"):
        nodes = set(group_hosts("cassandra", PRODUCTION_INVENTORY)) & set(group_hosts(region, PRODUCTION_INVENTORY))
        assert len(nodes) == 3, (region, nodes)


@pytest.mark.parametrize("playbook", ["kill.yml", "stop.yml"])
@pytest.mark.parametrize(
    "extra", [["-e", "chaos_service=sshd", "-e", "chaos_hosts=app-a"], ["-e", "chaos_service=kafka"]], ids=str
)
def test_a_fault_refuses_an_unknown_service_or_no_hosts_before_touching_any(playbook, extra) -> None:
    # The check is the first play, on the controller: no lab is needed, and none is touched.
    result = run(["ansible-playbook", "-i", str(LAB_INVENTORY), str(CHAOS / playbook), *extra])
    assert result.returncode == 2, result.stdout[-2000:]
    assert "Pass -e chaos_service=NAME" in result.stdout
    assert "app-a" not in result.stdout.split("PLAY RECAP")[-1]


@pytest.mark.parametrize(
    "extra",
    [
        ["-e", "cassandra_restore_tag=x", "-e", '{"cassandra_restore_tables": ["sales"]}'],
        ["-e", '{"cassandra_restore_tables": ["checkout.sales"]}'],
    ],
    ids=["table-without-keyspace", "no-tag"],
)
def test_a_restore_with_bad_variables_stops_before_any_node_is_touched(extra) -> None:
    # The check is the restore's first task, an assert: it runs on the controller, so no
    # lab is needed, and every host fails it before a command reaches any of them.
    result = run(
        ["ansible-playbook", "-i", str(LAB_INVENTORY), str(ROOT / "playbooks" / "cassandra_restore.yml"), *extra]
    )
    assert result.returncode == 2, result.stdout[-2000:]
    assert "Pass -e cassandra_restore_tag=TAG" in result.stdout
    recap = result.stdout.split("PLAY RECAP")[-1]
    assert "changed=0" in recap and "unreachable=0" in recap and "changed=1" not in recap, recap


def test_molecule_loads_every_plugin_dir_that_ansible_cfg_names() -> None:
    """Molecule runs with its own config: a plugin dir missing there breaks every scenario
    whose role uses it (the controller_cache_dir lookup did, unnoticed until a run)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "ansible.cfg")
    named = {key: value for key, value in cfg["defaults"].items() if key.endswith("_plugins")}
    env = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())["provisioner"]["env"]
    for key, path in named.items():
        assert env.get(f"ANSIBLE_{key.upper()}") == f"${{MOLECULE_PROJECT_DIRECTORY}}/{path}", key
