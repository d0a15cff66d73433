"""One typed settings object, read from CHECKOUT_* environment variables.

The defaults work against a single-node lab on localhost; the deployment role sets
the real hosts, data center and region.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from checkout.domain import CITY_BY_BRANCH, Branch

ConsistencyName = Literal["ANY", "ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL"]

# NoDecode: host lists arrive as "a,b,c" (what an inventory renders), not as JSON.
HostList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHECKOUT_", extra="ignore")

    region: str = Field("", description="Region this process runs in (e.g. A); tags events.")

    cassandra_hosts: HostList = Field(default_factory=lambda: ["127.0.0.1"])
    cassandra_port: int = 9042
    cassandra_local_dc: str = "datacenter1"
    # The shared keyspace (sales, every DC); each region's own is region_keyspace() of it.
    cassandra_keyspace: str = Field("checkout", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    # Which DC is each branch's home: its carts and stock live in that DC's keyspace.
    # "A:Yangon,B:Mandalay" as the inventory renders it; the default is the lab's.
    branch_dcs: Annotated[dict[Branch, str], NoDecode] = Field(
        default_factory=lambda: dict(CITY_BY_BRANCH)
    )
    cassandra_consistency: ConsistencyName = "LOCAL_QUORUM"
    # Level a statement is re-run at when the main one cannot be met (a replica down);
    # "" turns the fallback off. Ignored unless weaker than the main level.
    cassandra_fallback_consistency: ConsistencyName | Literal[""] = "LOCAL_ONE"
    cassandra_username: str | None = None
    cassandra_password: SecretStr | None = None
    cassandra_request_timeout_s: float = Field(5.0, gt=0)
    cassandra_connect_timeout_s: float = Field(10.0, gt=0)
    cassandra_write_attempts: int = Field(5, ge=1)
    cassandra_write_concurrency: int = Field(64, ge=1)

    kafka_bootstrap: HostList = Field(default_factory=lambda: ["127.0.0.1:9092"])
    kafka_sales_topic: str = "checkout-sales"
    kafka_dlq_topic: str = "checkout-sales-dlq"
    kafka_consumer_group: str = "checkout-cassandra-writer"
    # 1 ms: at one region's share of the SLO (about 20 publishes/s) batches stay single,
    # and 5 ms only added 4-5 ms to every checkout; at 100/s 20 ms halves the client's CPU
    # per record but doubles the ack time (loadtest/results/2026-11-30-producer.md).
    kafka_linger_ms: int = Field(1, ge=0)
    kafka_publish_timeout_s: float = Field(10.0, gt=0)
    kafka_max_poll_records: int = Field(500, ge=1)

    api_host: str = "0.0.0.0"
    api_port: int = 8080
    api_max_body_bytes: int = Field(64 * 1024, ge=1024)
    api_shutdown_grace_s: int = Field(20, ge=0)

    consumer_metrics_port: int = 8081

    initial_stock: int = Field(100, ge=0, description="Stock level of a product never restocked.")

    # The payment gateway service (checkout-gateway) and how long a charge may take.
    payment_gateway_url: str = "http://127.0.0.1:8090"
    payment_timeout_s: float = Field(2.0, gt=0)

    log_level: str = "INFO"

    @field_validator("cassandra_hosts", "kafka_bootstrap", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("branch_dcs", mode="before")
    @classmethod
    def _split_branch_dcs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [item.strip().partition(":") for item in value.split(",") if item.strip()]
        if any(not dc for _, _, dc in pairs):
            raise ValueError("expected BRANCH:DC pairs, e.g. A:Yangon,B:Mandalay")
        return {branch.strip(): dc.strip() for branch, _, dc in pairs}

    @field_validator("branch_dcs")
    @classmethod
    def _every_branch(cls, value: dict[Branch, str]) -> dict[Branch, str]:
        missing = sorted(set(Branch) - set(value))
        if missing:
            raise ValueError(f"no home DC for branch(es) {', '.join(missing)}")
        return value

    @field_validator("cassandra_hosts", "kafka_bootstrap")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one host")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
