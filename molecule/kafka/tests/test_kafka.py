"""One KRaft broker: it accepts a message and a consumer reads it back."""

import uuid


def test_message_round_trip(host):
    payload = f"probe-{uuid.uuid4()}"
    bootstrap = host.check_output("hostname -I").split()[0] + ":9092"
    topic = "checkout-sales-dlq"
    produced = host.run(
        f"echo {payload} | kafka-console-producer --bootstrap-server {bootstrap} --topic {topic} "
        "--producer-property acks=all"
    )
    assert produced.rc == 0, produced.stderr
    consumed = host.run(
        f"kafka-console-consumer --bootstrap-server {bootstrap} --topic {topic} --from-beginning --timeout-ms 20000"
    )
    assert payload in consumed.stdout, consumed.stderr + host.run("journalctl -u kafka -n 40 --no-pager").stdout


def test_topics_are_declared(host):
    bootstrap = host.check_output("hostname -I").split()[0] + ":9092"
    described = host.check_output(f"kafka-topics --bootstrap-server {bootstrap} --describe --topic checkout-sales")
    assert "PartitionCount: 6" in described
    assert "ReplicationFactor: 1" in described  # capped by the one broker


def test_cluster_id_is_kept_on_disk(host):
    meta = host.file("/var/lib/kafka/data/meta.properties")
    assert meta.exists and "cluster.id=" in meta.content_string


def test_broker_rack_is_the_region(host):
    assert "broker.rack=Yangon" in host.file("/etc/kafka/server.properties").content_string
