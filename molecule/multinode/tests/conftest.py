"""Pick one node of each kind from the scenario's inventory."""

import os

import pytest
import testinfra


def _host(name):
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="module")
def cassandra():
    return _host("mol-cass-yangon")


@pytest.fixture(scope="module")
def brokers():
    return [_host(f"mol-kafka-{i}") for i in (1, 2, 3)]
