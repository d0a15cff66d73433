"""One Cassandra node: it answers CQL, is UN in its DC, and replicates per DC."""


def _cql(host, statement):
    result = host.run(f'cqlsh -e "{statement}"')
    assert result.rc == 0, f"{result.stderr}\n{host.run('journalctl -u cassandra --no-pager -n 40').stdout}"
    return result.stdout


def test_node_is_up_normal_in_its_dc(host):
    status = host.run("nodetool status")
    assert status.rc == 0, status.stderr
    assert "Datacenter: Yangon" in status.stdout
    assert sum(line.startswith("UN ") for line in status.stdout.splitlines()) == 1, status.stdout


def test_cql_round_trip(host):
    _cql(
        host,
        "CREATE KEYSPACE IF NOT EXISTS probe WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'Yangon': 1};"
        "CREATE TABLE IF NOT EXISTS probe.t (k int PRIMARY KEY, v text);"
        "INSERT INTO probe.t (k, v) VALUES (1, 'checkout');",
    )
    assert "checkout" in _cql(host, "SELECT v FROM probe.t WHERE k = 1;")


def test_system_keyspaces_use_nts(host):
    out = _cql(host, "SELECT keyspace_name, replication FROM system_schema.keyspaces;")
    for keyspace in ("system_auth", "system_distributed", "system_traces"):
        line = next(line for line in out.splitlines() if line.strip().startswith(keyspace))
        assert "NetworkTopologyStrategy" in line and "'Yangon': '1'" in line, line


def test_jmx_exporter_serves_cassandra_metrics(host):
    metrics = host.run(
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:7070/metrics').read().decode())\""
    )
    assert metrics.rc == 0, metrics.stderr
    assert "cassandra_failuredetector_downendpointcount 0.0" in metrics.stdout


def test_service_runs_as_cassandra_user(host):
    service = host.service("cassandra")
    assert service.is_running and service.is_enabled
    assert host.run("ps -o user= -C java").stdout.split() == ["cassandra"]
