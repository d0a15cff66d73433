"""The node exporter runs under systemd on the role's port, with the role's collectors."""

PORT = 9101


def _metrics(host):
    url = f"http://127.0.0.1:{PORT}/metrics"
    script = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=10).read().decode())"
    return host.check_output(f'python3 -c "{script}"')


def test_the_service_is_enabled_and_running(host):
    service = host.service("prometheus-node-exporter")
    assert service.is_enabled
    assert service.is_running


def test_it_listens_on_the_role_port_only(host):
    assert host.socket(f"tcp://0.0.0.0:{PORT}").is_listening or host.socket(f"tcp://:::{PORT}").is_listening
    assert not host.socket("tcp://0.0.0.0:9100").is_listening


def test_it_serves_the_metrics_the_alerts_use(host):
    metrics = _metrics(host)
    for name in ("node_filesystem_avail_bytes", "node_timex_offset_seconds", "node_cpu_seconds_total"):
        assert f"\n{name}" in metrics, name


def test_the_disabled_collectors_stay_off(host):
    metrics = _metrics(host)
    assert 'node_scrape_collector_success{collector="zfs"}' not in metrics
    assert 'node_scrape_collector_success{collector="cpu"} 1' in metrics
