"""The inventory edits of ./lab scale (loadtest.scale_inventory), on the lab's own inventory."""

from __future__ import annotations

import pytest
import yaml

from loadtest.scale_inventory import NewNode, ScaleError, marked_to_leave, new_cassandra_node, with_node, without
from tests.conftest import LAB_INVENTORY


@pytest.fixture
def lab() -> dict:
    return yaml.safe_load(LAB_INVENTORY.read_text())


def test_the_new_node_follows_the_dcs_last_node(lab: dict) -> None:
    assert new_cassandra_node(lab, "Yangon") == NewNode("cass-a3", "10.89.42.15", "rack3", "yangon")
    assert new_cassandra_node(lab, "Naypyitaw") == NewNode("cass-c3", "10.89.42.35", "rack3", "naypyitaw")


def test_a_taken_address_is_skipped(lab: dict) -> None:
    lab["all"]["children"]["yangon"]["hosts"]["app-a2"] = {"ansible_host": "10.89.42.15"}
    assert new_cassandra_node(lab, "Yangon").address == "10.89.42.16"


def test_an_unknown_dc_is_refused(lab: dict) -> None:
    with pytest.raises(ScaleError, match="no region group with region 'Bago'"):
        new_cassandra_node(lab, "Bago")


def test_join_mark_and_remove_leave_the_original_alone(lab: dict) -> None:
    node = new_cassandra_node(lab, "Mandalay")
    grown = with_node(lab, node)
    assert grown["all"]["children"]["mandalay"]["hosts"]["cass-b3"] == {"ansible_host": "10.89.42.25", "rack": "rack3"}
    assert "cass-b3" in grown["all"]["children"]["cassandra"]["hosts"]
    leaving = marked_to_leave(grown, "cass-b3")
    assert leaving["all"]["children"]["cassandra"]["hosts"]["cass-b3"] == {"cassandra_decommission": True}
    assert without(leaving, "cass-b3") == lab
    assert "cass-b3" not in lab["all"]["children"]["cassandra"]["hosts"]


def test_only_a_cassandra_node_can_be_marked(lab: dict) -> None:
    with pytest.raises(ScaleError, match="app-a is not in the cassandra group"):
        marked_to_leave(lab, "app-a")
