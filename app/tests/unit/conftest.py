from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from checkout.catalog import Catalog, default_catalog
from checkout.dataset import DatasetRow, packaged_dataset_lines, parse_lines
from checkout.gateway.simulation import SandboxGateway
from checkout.http.app import create_app
from checkout.http.deps import AppDependencies
from checkout.service import CheckoutService
from tests.unit.fakes import FakeCartStore, FakePublisher, FakeStockLedger


@pytest.fixture(scope="session")
def dataset_rows() -> list[DatasetRow]:
    result = parse_lines(packaged_dataset_lines())
    assert result.errors == []
    return result.rows


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@dataclass
class Harness:
    client: TestClient
    service: CheckoutService
    carts: FakeCartStore
    stock: FakeStockLedger
    publisher: FakePublisher
    gateway: SandboxGateway

    def new_cart(self, branch: str = "A") -> str:
        response = self.client.post("/carts", json={"branch": branch})
        assert response.status_code == 201, response.text
        cart_id: str = response.json()["cart_id"]
        return cart_id

    def cart_with(self, product_id: str, quantity: int = 2, branch: str = "A") -> str:
        cart_id = self.new_cart(branch)
        response = self.client.post(
            f"/carts/{cart_id}/items", json={"product_id": product_id, "quantity": quantity}
        )
        assert response.status_code == 200, response.text
        return cart_id


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def make_harness(catalog: Catalog) -> Iterator[HarnessFactory]:
    clients: list[TestClient] = []

    def build(
        *, decline_rate: float = 0.0, timeout_rate: float = 0.0, initial_stock: int = 100
    ) -> Harness:
        gateway = SandboxGateway(
            seed=7,
            median_latency_s=0.0,
            decline_rate=decline_rate,
            timeout_rate=timeout_rate,
            hang_s=2.0,
        )
        carts = FakeCartStore()
        stock, publisher = FakeStockLedger(initial=initial_stock), FakePublisher()
        service = CheckoutService(
            catalog=catalog,
            carts=carts,
            stock=stock,
            publisher=publisher,
            gateway=gateway,
            region="Yangon",
            payment_timeout_s=0.05,
        )
        client = TestClient(create_app(AppDependencies(service=service, max_body_bytes=4096)))
        clients.append(client)
        return Harness(client, service, carts, stock, publisher, gateway)

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def harness(make_harness: HarnessFactory) -> Harness:
    return make_harness()


@pytest.fixture(scope="session")
def product_id(catalog: Catalog) -> str:
    return next(iter(catalog)).product_id
