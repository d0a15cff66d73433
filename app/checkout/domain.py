"""Vocabulary shared by the API, the dataset and the events: branches, lines, payments."""

from __future__ import annotations

import re
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


def region_keyspace(shared_keyspace: str, dc: str) -> str:
    """The keyspace of a region's operational state (carts, stock), replicated only in the
    region's DC: the shared keyspace's name and the DC's, e.g. checkout_yangon."""
    return f"{shared_keyspace}_{re.sub(r'[^a-z0-9_]', '_', dc.lower())}"


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
