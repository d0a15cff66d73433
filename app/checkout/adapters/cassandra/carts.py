"""Carts in their branch's region keyspace, with a write-through copy in this process.

A till talks to its region's API, so a cart is almost always read by the process that
wrote it: the copy saves a read per item added. The copy is only a view: every change is
written as what changed (an item row appended, a product's rows deleted), so a stale
copy in another process can never lose a change, and the checkout reads the cart from
Cassandra (`fresh`), which is what the sale is built from.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC
from types import MappingProxyType
from typing import Any

from checkout.adapters.cassandra.regions import PerRegion
from checkout.adapters.cassandra.session import Cassandra
from checkout.cart import Cart, CartStatus, CheckoutRecord
from checkout.domain import Branch
from checkout.errors import DependencyUnavailable

_HEADER = ("branch", "created_at", "status", "invoice_id")
_RECORD = ("checkout_key", "request_hash", "response_status", "response_body")


class _Statements:
    def __init__(self, db: Cassandra, keyspace: str) -> None:
        table = f"{keyspace}.carts"
        self.read = db.prepare(
            f"SELECT product_id, quantity, {', '.join(_HEADER + _RECORD)} FROM {table} "
            "WHERE cart_id = ?"
        )
        self.create = db.prepare(
            f"INSERT INTO {table} (cart_id, {', '.join(_HEADER[:3])}) VALUES (?, ?, ?, ?)"
        )
        self.add = db.prepare(
            f"INSERT INTO {table} (cart_id, product_id, entry, quantity) VALUES (?, ?, ?, ?)"
        )
        self.remove = db.prepare(f"DELETE FROM {table} WHERE cart_id = ? AND product_id = ?")
        self.close = db.prepare(
            f"UPDATE {table} SET status = ?, invoice_id = ?, "
            + ", ".join(f"{column} = ?" for column in _RECORD)
            + " WHERE cart_id = ?"
        )


class CassandraCartStore:
    def __init__(
        self,
        db: Cassandra,
        shared_keyspace: str,
        branch_dcs: Mapping[Branch, str],
        remember: int = 50_000,
    ) -> None:
        self._db = db
        self._regions = PerRegion(db, shared_keyspace, branch_dcs, _Statements)
        self._statements = self._regions.by_dc
        self._remember = remember
        self._copies: OrderedDict[str, Cart] = OrderedDict()

    def _keep(self, cart: Cart) -> None:
        self._copies[cart.cart_id] = cart
        self._copies.move_to_end(cart.cart_id)
        if len(self._copies) > self._remember:
            self._copies.popitem(last=False)

    async def _read(self, dc: str, cart_id: str) -> Cart | None:
        rows = await self._db.execute(self._statements[dc].read, (cart_id,), dc=dc)
        return cart_from_rows(cart_id, rows)

    async def get(self, cart_id: str, *, fresh: bool = False) -> Cart | None:
        copy = self._copies.get(cart_id)
        if copy is not None and not fresh:
            return copy
        # Where it lives: the copy says so; otherwise this region first, then the others
        # (a till of another region that failed over to this API).
        local = self._db.local_dc
        first = self._regions.of_branch(copy.branch)[1] if copy is not None else local
        cart = await self._read(first, cart_id) if first in self._statements else None
        if cart is None:
            others = [dc for dc in self._statements if dc != first]
            found = await asyncio.gather(
                *(self._read(dc, cart_id) for dc in others), return_exceptions=True
            )
            carts = [c for c in found if isinstance(c, Cart)]
            failed = [e for e in found if isinstance(e, BaseException)]
            if carts:
                cart = carts[0]
            elif failed:
                raise DependencyUnavailable(
                    f"cart {cart_id} is not in DC {first} and other DCs did not answer: {failed[0]}"
                ) from failed[0]
        if cart is not None:
            self._keep(cart)
        return cart

    def _where(self, cart: Cart) -> tuple[_Statements, str]:
        return self._regions.of_branch(cart.branch)

    async def create(self, cart: Cart) -> None:
        statements, dc = self._where(cart)
        params = (cart.cart_id, cart.branch.value, cart.created_at, cart.status.value)
        await self._db.execute(statements.create, params, dc=dc)
        self._keep(cart)

    async def add(self, cart: Cart, product_id: str, quantity: int) -> None:
        statements, dc = self._where(cart)
        params = (cart.cart_id, product_id, uuid.uuid1(), quantity)
        await self._db.execute(statements.add, params, dc=dc)
        self._keep(cart)

    async def remove(self, cart: Cart, product_id: str) -> None:
        statements, dc = self._where(cart)
        await self._db.execute(statements.remove, (cart.cart_id, product_id), dc=dc)
        self._keep(cart)

    async def close(self, cart: Cart) -> None:
        record = cart.checkout
        if record is None:
            raise ValueError(f"cart {cart.cart_id} has no checkout record to store")
        statements, dc = self._where(cart)
        params = (
            cart.status.value,
            cart.invoice_id,
            record.key,
            record.request_hash,
            record.response_status,
            record.response_body,
            cart.cart_id,
        )
        await self._db.execute(statements.close, params, dc=dc)
        self._keep(cart)


def cart_from_rows(cart_id: str, rows: Sequence[Any]) -> Cart | None:
    """A cart partition's rows (header in static columns, one row per item added) as a
    Cart; None when there is no header (never created, or expired)."""
    if not rows or rows[0].branch is None:
        return None
    header = rows[0]
    items: dict[str, int] = {}
    for row in rows:
        if row.product_id is not None:
            items[row.product_id] = items.get(row.product_id, 0) + row.quantity
    record = None
    if header.checkout_key is not None:
        record = CheckoutRecord(
            header.checkout_key,
            header.request_hash,
            header.response_status,
            header.response_body,
        )
    return Cart(
        cart_id=cart_id,
        branch=Branch(header.branch),
        # The driver returns timestamps as naive UTC datetimes.
        created_at=header.created_at.replace(tzinfo=UTC),
        items=MappingProxyType(items),
        status=CartStatus(header.status),
        invoice_id=header.invoice_id,
        checkout=record,
    )
