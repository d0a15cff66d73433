"""The product catalog, derived from the dataset.

The dataset has no product names, so a product is a distinct (product line, unit price)
pair: 993 of them in the 1000 sales. Its id is the line's initials plus a hash of the
pair, so it is short, stable across runs and machines, and the same in the API, the
replayed events and Cassandra.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from checkout.dataset import DatasetRow, packaged_dataset_lines, parse_lines
from checkout.domain import ProductLine


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    product_line: ProductLine
    unit_price: Decimal


def product_id_for(product_line: ProductLine, unit_price: Decimal) -> str:
    initials = "".join(word[0] for word in product_line.value.split() if word != "and").lower()
    digest = hashlib.sha256(f"{product_line.value}|{unit_price}".encode()).hexdigest()[:8]
    return f"{initials}-{digest}"


class Catalog:
    def __init__(self, products: Iterable[Product]) -> None:
        self._products: dict[str, Product] = {}
        for product in products:
            if product.product_id in self._products:
                raise ValueError(f"duplicate product id {product.product_id}")
            self._products[product.product_id] = product

    @classmethod
    def from_rows(cls, rows: Iterable[DatasetRow]) -> Catalog:
        pairs = sorted({(row.product_line, row.unit_price) for row in rows})
        return cls(Product(product_id_for(line, price), line, price) for line, price in pairs)

    def get(self, product_id: str) -> Product | None:
        return self._products.get(product_id)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._products.values())

    def __len__(self) -> int:
        return len(self._products)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    result = parse_lines(packaged_dataset_lines())
    if result.errors:
        raise RuntimeError(f"the packaged dataset is invalid: {result.errors[0]}")
    return Catalog.from_rows(result.rows)
