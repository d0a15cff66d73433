"""Vocabulary shared by the API, the dataset and the events: branches, lines, payments."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import timedelta, timezone
from enum import StrEnum


class Branch(StrEnum):
    A = "A"
    B = "B"
    C = "C"


CITY_BY_BRANCH: dict[Branch, str] = {
    Branch.A: "Yangon",
    Branch.B: "Mandalay",
    Branch.C: "Naypyitaw",
}


class CheckoutStage(StrEnum):
    """The sequential stages of a checkout, in the order they run; the API times each
    (checkout_stage_duration_seconds) and the bench reports them in this order."""

    CART = "cart"  # the cart's read and the replay check
    CHARGE = "charge"  # the payment gateway
    COMMIT = "commit"  # the stock movements and the Kafka publish, concurrently
    CLOSE = "close"  # the checkout record


def region_keyspace(shared_keyspace: str, dc: str) -> str:
    """The keyspace of a region's operational state (carts, stock), replicated in the
    region's DC (and a standby replica in the next, see region_replication): the shared
    keyspace's name and the DC's, e.g. checkout_yangon."""
    return f"{shared_keyspace}_{re.sub(r'[^a-z0-9_]', '_', dc.lower())}"


def _after(dc: str, dcs: Collection[str]) -> list[str]:
    """The other DCs in name order, starting after `dc` and wrapping around."""
    ring = sorted(set(dcs) | {dc})
    at = ring.index(dc)
    return ring[at + 1 :] + ring[:at]


def standby_dc(dc: str, dcs: Collection[str]) -> str | None:
    """The DC that keeps a standby replica of `dc`'s region keyspace: the next DC in name
    order, wrapping around (Mandalay -> Naypyitaw -> Yangon -> Mandalay); None alone."""
    return next(iter(_after(dc, dcs)), None)


def region_replication(
    dc: str, replication: Mapping[str, int], standby_replicas: int
) -> dict[str, int]:
    """A region keyspace's factors: its DC's, plus `standby_replicas` (at most that DC's
    own factor) in its standby DC, so the region can fail over when its DC is down."""
    factors = {dc: replication[dc]}
    standby = standby_dc(dc, replication)
    if standby is not None and standby_replicas > 0:
        factors[standby] = min(standby_replicas, replication[standby])
    return factors


def failover_dc(dc: str, factors: Mapping[str, int], up: Collection[str]) -> str | None:
    """Where to run a statement meant for `dc` when none of its nodes is up: the first DC
    after it in name order that holds replicas of the keyspace (`factors`) and has a node
    up. For a region keyspace that is its standby DC; None when no DC qualifies."""
    return next(
        (other for other in _after(dc, factors) if factors[other] > 0 and other in up), None
    )


def check_city(branch: Branch, city: str) -> None:
    """A sale's city is its branch's: the dataset and the events both carry both."""
    if city != CITY_BY_BRANCH[branch]:
        raise ValueError(f"City {city!r} does not match branch {branch} ({CITY_BY_BRANCH[branch]})")


# All three stores are in Myanmar, which keeps UTC+06:30 all year (no DST), so a fixed
# offset is exact and needs no tz database on the nodes.
STORE_TZ = timezone(timedelta(hours=6, minutes=30), "MMT")


class ProductLine(StrEnum):
    ELECTRONIC_ACCESSORIES = "Electronic accessories"
    FASHION_ACCESSORIES = "Fashion accessories"
    FOOD_AND_BEVERAGES = "Food and beverages"
    HEALTH_AND_BEAUTY = "Health and beauty"
    HOME_AND_LIFESTYLE = "Home and lifestyle"
    SPORTS_AND_TRAVEL = "Sports and travel"


class PaymentMethod(StrEnum):
    CASH = "Cash"
    CREDIT_CARD = "Credit card"
    EWALLET = "Ewallet"


class CustomerType(StrEnum):
    MEMBER = "Member"
    NORMAL = "Normal"


class Gender(StrEnum):
    FEMALE = "Female"
    MALE = "Male"
