"""Exercise 12 — a custom exception in the error envelope (guide: "Custom Exceptions").

`reserve` is the shop's rule for taking stock off a product; `POST /products/{id}/reserve`
calls it. Every error the API returns has the kit's shape,
`{"error": {"code", "message", "request_id", "details"}}`, with a status that says what went
wrong. Today running out of stock raises a plain exception, so the client gets a 500
`internal_error`, as if the server were broken. Make `OutOfStockError` one of the kit's errors
(`patterns.errors.AppError`): status 409, code `out_of_stock`, a message that names the product
and what is left, and `details` carrying `{"product_id": ..., "available": ...}`.
"""

from __future__ import annotations

from learn.models import Product


class OutOfStockError(Exception):
    def __init__(self, product: Product) -> None:
        super().__init__(f"not enough stock for product {product.id}")


def reserve(product: Product, quantity: int) -> None:
    if quantity > product.stock:
        raise OutOfStockError(product)
    product.stock -= quantity
