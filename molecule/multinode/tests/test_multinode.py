"""Two Cassandra DCs see each other UN; three brokers keep every partition in sync."""

import re
import uuid

testinfra_hosts = ["ansible://mol-cass-yangon"]


def test_both_dcs_are_up_normal(cassandra):
    status = cassandra.check_output("nodetool status")
    assert "Datacenter: Yangon" in status and "Datacenter: Mandalay" in status, status
    assert len(re.findall(r"(?m)^UN\s", status)) == 2, status


def test_system_auth_replicates_to_both_dcs(cassandra):
    out = cassandra.check_output(
        "cqlsh -e \"SELECT replication FROM system_schema.keyspaces WHERE keyspace_name='system_auth'\""
    )
    assert "'Yangon': '1'" in out and "'Mandalay': '1'" in out, out


def test_partitions_in_sync_on_three_brokers(brokers):
    broker = brokers[0]
    bootstrap = broker.check_output("hostname -I").split()[0] + ":9092"
    described = broker.check_output(f"kafka-topics --bootstrap-server {bootstrap} --describe --topic checkout-sales")
    partitions = re.findall(r"Replicas: ([\d,]+)\s+Isr: ([\d,]+)", described)
    assert len(partitions) == 6, described
    for replicas, isr in partitions:
        assert len(replicas.split(",")) == 3 and set(replicas.split(",")) == set(isr.split(",")), described


def test_message_crosses_brokers(brokers):
    payload = f"probe-{uuid.uuid4()}"
    first = brokers[0].check_output("hostname -I").split()[0] + ":9092"
    last = brokers[2].check_output("hostname -I").split()[0] + ":9092"
    sent = brokers[0].run(
        f"echo {payload} | kafka-console-producer --bootstrap-server {first} --topic checkout-sales-dlq "
        "--producer-property acks=all"
    )
    assert sent.rc == 0, sent.stderr
    read = brokers[2].run(
        f"kafka-console-consumer --bootstrap-server {last} --topic checkout-sales-dlq "
        "--from-beginning --timeout-ms 20000"
    )
    assert payload in read.stdout, read.stderr
