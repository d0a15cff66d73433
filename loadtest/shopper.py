"""Shopper baskets drawn from the dataset, so the load has the chain's real mix.

Every basket starts from one sale of the dataset (uniformly, so branch, payment method,
customer type and gender follow the dataset's own proportions) and adds a few more
products sold at the same branch. A small share of shoppers put one item back.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DATASET = Path(__file__).resolve().parents[1] / "app" / "checkout" / "data" / "supermarket_sales.csv"
# How many distinct products a basket holds (1..5) and how often: most shoppers buy few.
ITEM_COUNT_WEIGHTS: tuple[int, ...] = (40, 25, 15, 12, 8)
# Share of baskets where the shopper adds one more product and then removes it.
REMOVAL_PROBABILITY = 0.1

ProductKey = tuple[str, Decimal]  # (product line, unit price): how the API names a product


@dataclass(frozen=True, slots=True)
class Sale:
    branch: str
    product: ProductKey
    quantity: int
    payment: str
    customer_type: str
    gender: str
    rating: str


@dataclass(frozen=True, slots=True)
class Basket:
    branch: str
    items: tuple[tuple[ProductKey, int], ...]
    removed: ProductKey | None
    payment: str
    customer_type: str
    gender: str
    rating: str

    def checkout_body(self) -> dict[str, str]:
        return {
            "payment": self.payment,
            "customer_type": self.customer_type,
            "gender": self.gender,
            "rating": self.rating,
        }


def load_sales(path: Path = DATASET) -> list[Sale]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Sale(
                branch=row["Branch"],
                product=(row["Product line"], Decimal(row["Unit price"])),
                quantity=int(row["Quantity"]),
                payment=row["Payment"],
                customer_type=row["Customer type"],
                gender=row["Gender"],
                rating=row["Customer stratification rating"],
            )
            for row in csv.DictReader(handle)
        ]


def branch_weights(sales: Sequence[Sale]) -> dict[str, int]:
    weights: dict[str, int] = {}
    for sale in sales:
        weights[sale.branch] = weights.get(sale.branch, 0) + 1
    return dict(sorted(weights.items()))


def by_branch(sales: Sequence[Sale]) -> dict[str, list[Sale]]:
    grouped: dict[str, list[Sale]] = {}
    for sale in sales:
        grouped.setdefault(sale.branch, []).append(sale)
    return grouped


def draw_basket(rng: random.Random, sales: Sequence[Sale]) -> Basket:
    """A basket at the branch of `sales` (all of one branch), led by one real sale."""
    lead = rng.choice(sales)
    count = rng.choices(range(1, len(ITEM_COUNT_WEIGHTS) + 1), weights=ITEM_COUNT_WEIGHTS)[0]
    items: dict[ProductKey, int] = {lead.product: lead.quantity}
    while len(items) < count:
        extra = rng.choice(sales)
        items.setdefault(extra.product, extra.quantity)
    removed = None
    if rng.random() < REMOVAL_PROBABILITY:
        candidate = rng.choice(sales).product
        removed = None if candidate in items else candidate
    return Basket(
        branch=lead.branch,
        items=tuple(items.items()),
        removed=removed,
        payment=lead.payment,
        customer_type=lead.customer_type,
        gender=lead.gender,
        rating=lead.rating,
    )


def product_ids(catalog: Sequence[Mapping[str, str]]) -> dict[ProductKey, str]:
    """Map (line, price) to the API's product id, from the API's GET /products answer."""
    return {(p["product_line"], Decimal(str(p["unit_price"]))): p["product_id"] for p in catalog}
