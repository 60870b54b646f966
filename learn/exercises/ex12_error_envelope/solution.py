"""Exercise 12 — a custom exception in the error envelope (guide: "Custom Exceptions").

A subclass of the kit's `AppError` declares its status and code once; the kit's handlers turn
it into the envelope wherever it is raised (an endpoint, a dependency, a service function), so
the domain code raises a domain error and never builds a response.
"""

from __future__ import annotations

from learn.models import Product
from patterns.errors import AppError


class OutOfStockError(AppError):
    status_code = 409
    code = "out_of_stock"
    default_message = "Not enough stock."

    def __init__(self, product: Product) -> None:
        super().__init__(
            f"Only {product.stock} of {product.name} left.",
            details=[{"product_id": product.id, "available": product.stock}],
        )


def reserve(product: Product, quantity: int) -> None:
    if quantity > product.stock:
        raise OutOfStockError(product)
    product.stock -= quantity
