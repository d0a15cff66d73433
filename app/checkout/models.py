"""HTTP request and response models of the checkout API.

Requests are strict: unknown fields, strings where numbers belong (and numbers where
strings belong), unknown branches and payment methods are refused with a message naming
the field, instead of being coerced. (Model-wide strict mode is not used: FastAPI
validates decoded JSON, where enum values arrive as plain strings.)
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr
from pydantic_core import PydanticCustomError

from checkout.cart import MAX_QUANTITY_PER_LINE, CartStatus
from checkout.catalog import default_catalog
from checkout.domain import Branch, CustomerType, Gender, PaymentMethod, ProductLine
from checkout.inventory import MAX_RESTOCK


def _json_integer(value: object) -> object:
    """JSON's integers: 2 and 2.0 (one number in JSON Schema), never "2" or true."""
    not_integer = PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise not_integer
    if isinstance(value, float):
        if not value.is_integer():
            raise not_integer
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


# A rating written as a decimal string, as the dataset writes it ("7.1"): exact, 0 to 10.
RATING_PATTERN = r"^(10(\.0)?|[0-9](\.[0-9])?)$"


def _one_decimal(value: object) -> object:
    """A JSON number, kept to one decimal as the dataset's ratings are (7.35 -> 7.4, and a
    float's binary noise such as 0.30000000000000004 -> 0.3), or a decimal string."""
    if value is None:
        return None
    if isinstance(value, str):
        if not re.match(RATING_PATTERN, value):
            raise PydanticCustomError(
                "decimal_type", "Input should be a number from 0 to 10 with one decimal"
            )
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise PydanticCustomError("decimal_type", "Input should be a number")
    if not 0 <= value <= 10:
        raise PydanticCustomError("decimal_range", "Input should be from 0 to 10")
    return Decimal(str(value)).quantize(Decimal("0.1"))


# The catalog is the dataset's, fixed: its ids are the only products there are. The spec
# lists them, so that a client (or a fuzzer) knows an unknown id is not a valid request.
PRODUCT_IDS = sorted(p.product_id for p in default_catalog())
ProductId = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=64,
        examples=["hb-3b5ef0bc"],
        json_schema_extra={"enum": PRODUCT_IDS},
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateCartRequest(_Request):
    branch: Branch = Field(description="A (Yangon), B (Mandalay) or C (Naypyitaw).")


class AddItemRequest(_Request):
    product_id: ProductId
    quantity: JsonInt = Field(gt=0, le=MAX_QUANTITY_PER_LINE)


class CheckoutRequest(_Request):
    payment: PaymentMethod
    customer_type: CustomerType = CustomerType.NORMAL
    gender: Gender | None = None
    rating: Annotated[Decimal, BeforeValidator(_one_decimal), Field(ge=0, le=10)] | None = Field(
        None,
        description="Customer stratification rating, 0 to 10, kept to one decimal.",
        json_schema_extra={
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 10},
                {"type": "string", "pattern": RATING_PATTERN},
                {"type": "null"},
            ]
        },
    )


class RestockRequest(_Request):
    quantity: JsonInt = Field(gt=0, le=MAX_RESTOCK, description="Units delivered.")


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
