import pytest
from pydantic import ValidationError

from checkout.adapters.cassandra.session import consistency, read_consistency
from checkout.config import Settings


def test_defaults_work_for_a_local_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CASSANDRA_HOSTS",
        "KAFKA_BOOTSTRAP",
        "CASSANDRA_CONSISTENCY",
        "CASSANDRA_FALLBACK_CONSISTENCY",
    ):
        monkeypatch.delenv(f"CHECKOUT_{name}", raising=False)
    settings = Settings()
    assert settings.cassandra_hosts == ["127.0.0.1"]
    assert settings.cassandra_keyspace == "checkout"
    assert settings.cassandra_consistency == "LOCAL_QUORUM"
    assert settings.cassandra_fallback_consistency == "LOCAL_ONE"
    assert settings.kafka_sales_topic == "checkout-sales"
    assert settings.kafka_dlq_topic == "checkout-sales-dlq"
    assert settings.kafka_consumer_group == "checkout-cassandra-writer"
    assert (settings.api_port, settings.consumer_metrics_port) == (8080, 8081)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_CASSANDRA_HOSTS", "10.0.0.1, 10.0.0.2,")
    monkeypatch.setenv("CHECKOUT_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("CHECKOUT_CASSANDRA_CONSISTENCY", "EACH_QUORUM")
    monkeypatch.setenv("CHECKOUT_CASSANDRA_LOCAL_DC", "Mandalay")
    monkeypatch.setenv("CHECKOUT_REGION", "Mandalay")
    settings = Settings()
    assert settings.cassandra_hosts == ["10.0.0.1", "10.0.0.2"]
    assert settings.kafka_bootstrap == ["k1:9092", "k2:9092"]
    assert settings.cassandra_consistency == "EACH_QUORUM"
    assert (settings.cassandra_local_dc, settings.region) == ("Mandalay", "Mandalay")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CASSANDRA_CONSISTENCY", "TWO_PLUS"),
        ("CASSANDRA_FALLBACK_CONSISTENCY", "local_one"),
        ("CASSANDRA_HOSTS", " , "),
        ("API_PORT", "http"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"CHECKOUT_{name}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_every_consistency_level_maps_to_the_driver() -> None:
    for name in ("ANY", "ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL"):
        assert isinstance(consistency(name), int)
    assert read_consistency("ANY") == consistency("ONE")


def test_an_empty_fallback_consistency_turns_the_fallback_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHECKOUT_CASSANDRA_FALLBACK_CONSISTENCY", "")
    assert Settings().cassandra_fallback_consistency == ""
    monkeypatch.setenv("CHECKOUT_CASSANDRA_FALLBACK_CONSISTENCY", "ONE")
    assert Settings().cassandra_fallback_consistency == "ONE"
