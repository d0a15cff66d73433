"""HTTP request and response models of the checkout API.

Requests are strict: unknown fields, strings where numbers belong (and numbers where
strings belong), unknown branches and payment methods are refused with a message naming
the field, instead of being coerced. (Model-wide strict mode is not used: FastAPI
validates decoded JSON, where enum values arrive as plain strings.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from checkout.cart import MAX_QUANTITY_PER_LINE, CartStatus
from checkout.domain import Branch, CustomerType, Gender, PaymentMethod, ProductLine
from checkout.inventory import MAX_RESTOCK


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateCartRequest(_Request):
    branch: Branch = Field(description="A (Yangon), B (Mandalay) or C (Naypyitaw).")


class AddItemRequest(_Request):
    product_id: StrictStr = Field(min_length=1, max_length=64, examples=["hb-3b5ef0bc"])
    quantity: StrictInt = Field(gt=0, le=MAX_QUANTITY_PER_LINE)


class CheckoutRequest(_Request):
    payment: PaymentMethod
    customer_type: CustomerType = CustomerType.NORMAL
    gender: Gender | None = None
    rating: Annotated[Decimal, Field(ge=0, le=10, decimal_places=1)] | None = Field(
        None, description="Customer stratification rating, 0 to 10, one decimal."
    )


class RestockRequest(_Request):
    quantity: StrictInt = Field(gt=0, le=MAX_RESTOCK, description="Units delivered.")


class BranchOut(BaseModel):
    branch: Branch
    city: str


class ProductOut(BaseModel):
    product_id: str
    product_line: ProductLine
    unit_price: Decimal


class CartLineOut(BaseModel):
    product_id: str
    product_line: ProductLine
    unit_price: Decimal
    quantity: int
    cogs: Decimal
    tax: Decimal
    total: Decimal


class CartOut(BaseModel):
    cart_id: str
    branch: Branch
    city: str
    status: CartStatus
    invoice_id: str | None
    created_at: AwareDatetime = Field(description="When the cart was opened, in UTC.")
    lines: list[CartLineOut]
    cogs: Decimal
    tax: Decimal
    total: Decimal
    amount_due: Decimal


class ReceiptLineOut(CartLineOut):
    gross_income: Decimal
    gross_margin_pct: Decimal


class ReceiptOut(BaseModel):
    invoice_id: str
    cart_id: str
    branch: Branch
    city: str
    sold_at: AwareDatetime = Field(description="The payment's approval time, in UTC.")
    payment: PaymentMethod
    charge_id: str
    customer_type: CustomerType
    gender: Gender | None
    rating: Decimal | None
    lines: list[ReceiptLineOut]
    cogs: Decimal
    tax: Decimal
    total: Decimal
    gross_income: Decimal
    gross_margin_pct: Decimal
    amount_due: Decimal


class StockOut(BaseModel):
    branch: Branch
    product_id: str
    level: int
    negative: bool


class ErrorOut(BaseModel):
    detail: str
    errors: list[str] = Field(default_factory=list)
