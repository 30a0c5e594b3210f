"""Minibar and extras from the room phone: ``*51*ARTICLE*QTY`` becomes a product order in Mews.

Article codes are what is printed on the minibar list; each maps to a product of the configured Mews
service (``mews-bridge pbx setup`` lists them)::

    [services.options.products]
    "12" = "…"    # Mineral water 0.5 l
    "31" = "…"    # Laundry service

Mews prices the product (``ProductOrders``), so the price list stays in Mews. The catalogue read from
``products/getAll`` gives the bridge the name and price it shows in ``pbx charges``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .charges import Charge

PRODUCT_CLASS = "product"
"""``Charge.call_class`` of an article: priced by Mews."""


class ArticleRefused(ValueError):
    """An article code that cannot be ordered; the text is safe to log and to tell the caller."""


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    price: Decimal
    currency: str


def product_name(row: Mapping[str, Any]) -> str:
    names = row.get("Names") or {}
    return str(names.get("en-US") or next(iter(names.values()), None) or row.get("Id"))


def product_price(row: Mapping[str, Any], pricing: str) -> tuple[Decimal, str]:
    """The unit price in the property's pricing mode (GrossValue or NetValue) and its currency."""
    price = row.get("Price") or {}
    value = price.get("GrossValue" if pricing == "Gross" else "NetValue") or 0
    return Decimal(str(value)), str(price.get("Currency") or "")


class Catalogue:
    """Article code → Mews product, as Mews last listed the service's products."""

    def __init__(self, articles: Mapping[str, str], max_count: int) -> None:
        self.articles = dict(articles)
        self.max_count = max_count
        self._products: dict[str, Product] = {}
        self._problems: dict[str, str] = {}

    def load(self, rows: Iterable[Mapping[str, Any]], pricing: str, logger: logging.Logger) -> None:
        """Take in ``products/getAll`` of the service; articles without an active product are logged
        once here and refused when dialled (the others keep working)."""
        by_id = {str(r.get("Id")): r for r in rows}
        self._products, self._problems = {}, {}
        for article, product_id in self.articles.items():
            row = by_id.get(product_id)
            if row is None:
                self._problems[article] = "is not a product of the service"
            elif not row.get("IsActive", True):
                self._problems[article] = f"is {product_name(row)!r}, which is inactive"
            else:
                price, currency = product_price(row, pricing)
                self._products[article] = Product(product_id, product_name(row), price, currency)
        for article, problem in sorted(self._problems.items()):
            logger.error(
                "products: article %s = %s %s; dialling it gets an error prompt (mews-bridge pbx setup "
                "lists the products)",
                article,
                self.articles[article],
                problem,
            )

    def product(self, article: str, count: int) -> Product:
        """The product to post; :class:`ArticleRefused` for an unknown article or a silly quantity."""
        if count > self.max_count:
            raise ArticleRefused(f"at most {self.max_count} of an article at once, not {count}")
        key = article if article in self.articles else article.lstrip("0")
        if key not in self.articles:
            raise ArticleRefused(f"article {article} is not on the list")
        product = self._products.get(key)
        if product is None:
            raise ArticleRefused(f"article {article} cannot be ordered now")
        return product


def article_charge(
    product: Product, article: str, count: int, request: str, base: Mapping[str, Any]
) -> Charge:
    """The charge for ``count`` of ``product`` ordered in the call ``request``; ``base`` holds the
    room, guest and time, as for a call."""
    total = product.price * count
    # Money as a bill shows it (7.00), unless the price itself has more decimals.
    amount = f"{total:.2f}" if total == total.quantize(Decimal("0.01")) else str(total)
    return Charge(
        key=f"item-{request}",
        number=article,
        item=f"{count} x {product.name}",
        call_class=PRODUCT_CLASS,
        seconds=0,
        amount=amount,
        currency=product.currency,
        product_id=product.id,
        count=count,
        **base,
    )
