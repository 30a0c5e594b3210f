"""Call rating: the tariff file, number normalisation and the price of a call, all in Decimal.

The file format is described in the plugin's README ("Tariff file"). In short: ``[numbering]`` says
how guests dial, ``[free]`` lists numbers that are never charged, ``[classes.<name>]`` give prices
(local, national, mobile, international, premium, or any name), and ``[prefixes]`` map E.164
prefixes, optionally with a number type (``"+43 mobile"``), to classes, the longest matching prefix
winning.

Numbering plans come from ``phonenumbers`` (the Python port of Google's libphonenumber): whether a
number can exist, its type (mobile, fixed, premium, toll-free …) and how it is written
(``+43 316 123456``, ``+44 20 7123 4567``). They are imported at the first call rated, not at
start: the bridge's idle memory does not carry them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError

if TYPE_CHECKING:
    import phonenumbers

_SEPARATORS = re.compile(r"[\s\-().]")
_PREFIX = re.compile(r"\+[0-9]*")
# libphonenumber's types (``PhoneNumberType`` names), by the names a tariff uses.
NUMBER_TYPES: dict[str, str] = {
    "FIXED_LINE": "fixed",
    "FIXED_LINE_OR_MOBILE": "fixed",  # North America cannot tell them apart
    "MOBILE": "mobile",
    "TOLL_FREE": "toll-free",
    "PREMIUM_RATE": "premium",
    "SHARED_COST": "shared-cost",
    "VOIP": "voip",
    "PERSONAL_NUMBER": "personal",
    "PAGER": "pager",
    "UAN": "uan",
    "VOICEMAIL": "voicemail",
}
TYPE_NAMES = frozenset(NUMBER_TYPES.values()) | {"unknown"}
_SIXTY = Decimal(60)


class TariffError(ValueError):
    """The tariff file is invalid, or a number cannot be rated with it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prices(_Strict):
    """How one class of calls is priced."""

    per_minute: Decimal = Field(ge=0)
    first_block: NonNegativeInt = 60
    """Seconds charged as soon as the call is answered."""
    first_block_price: Decimal | None = Field(default=None, ge=0)
    """Price of the first block; by default ``per_minute`` pro rata."""
    increment: PositiveInt = 60
    """After the first block, time is charged in whole increments of this many seconds, rounded up."""
    setup_fee: Decimal = Field(default=Decimal(0), ge=0)
    minimum: Decimal = Field(default=Decimal(0), ge=0)
    maximum: Decimal | None = Field(default=None, ge=0)
    free_seconds: NonNegativeInt = 0
    """Calls of at most this many billable seconds cost nothing."""


class PrefixOverride(_Strict):
    """A prefix with its class and, optionally, prices that differ from the class's."""

    call_class: str = Field(alias="class")
    per_minute: Decimal | None = Field(default=None, ge=0)
    first_block: NonNegativeInt | None = None
    first_block_price: Decimal | None = Field(default=None, ge=0)
    increment: PositiveInt | None = None
    setup_fee: Decimal | None = Field(default=None, ge=0)
    minimum: Decimal | None = Field(default=None, ge=0)
    maximum: Decimal | None = Field(default=None, ge=0)
    free_seconds: NonNegativeInt | None = None


class Numbering(_Strict):
    """How numbers are dialled from the hotel, to turn them into E.164."""

    country_code: str = Field(pattern=r"^[1-9][0-9]{0,2}$")
    area_code: str = Field(default="", pattern=r"^[0-9]*$")
    """Prepended to numbers dialled without a prefix (local numbers); empty where there are none."""
    local_number_length: PositiveInt | None = None
    """Only numbers at most this long get the area code; longer ones get just the country code."""
    international_prefix: str = Field(default="00", pattern=r"^[0-9]*$")
    trunk_prefix: str = Field(default="0", pattern=r"^[0-9]*$")
    """National trunk prefix (``0`` in most of Europe, ``1`` in North America, empty in Poland)."""
    strip: str = Field(default="", pattern=r"^[0-9]*$")
    """Outside-line digit still present in the CDR's Destination (if the dialplan does not remove it)."""
    internal_max_length: NonNegativeInt = 4
    """Numbers of at most this many digits are internal (rooms, services) and never charged."""


class FreeNumbers(_Strict):
    numbers: list[str] = []
    """Dialled exactly so: emergency and service numbers (``112``, ``911``, ``999``)."""
    prefixes: list[str] = []
    """E.164 prefixes (``+800``, ``+48800``): toll-free."""
    types: list[str] = []
    """Number types that are free wherever they are (``toll-free``)."""


class TariffFile(_Strict):
    """The TOML document, as written by the user."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    decimal_places: NonNegativeInt = 2
    numbering: Numbering
    free: FreeNumbers = FreeNumbers()
    classes: dict[str, Prices]
    prefixes: dict[str, str | PrefixOverride]


@dataclass(frozen=True, slots=True)
class Rating:
    """The price of one call."""

    number: str
    """E.164, e.g. ``+48221234567``."""
    display: str
    """For bills: ``+48 22 123 45 67``."""
    number_type: str
    """``fixed``, ``mobile``, ``premium``, ``toll-free`` … (see :data:`NUMBER_TYPES`), ``unknown``,
    or empty for internal and emergency numbers."""
    call_class: str
    """The tariff class, or ``free`` for free and internal numbers."""
    prefix: str
    """The tariff prefix that matched (empty for free numbers)."""
    billable_seconds: int
    charged_seconds: int
    """Seconds paid for after block and increment rounding."""
    amount: Decimal
    free_reason: str | None = None
    """Why a call costs nothing: ``emergency or service number``, ``internal number``, ``toll-free``,
    ``short call``; None when it costs something."""

    @property
    def chargeable(self) -> bool:
        return self.amount > 0


class Tariff:
    """A validated tariff; :meth:`rate` prices calls."""

    def __init__(self, spec: TariffFile) -> None:
        self.spec = spec
        self.currency = spec.currency
        self._quantum = Decimal(1).scaleb(-spec.decimal_places)
        self._zero = Decimal(0).quantize(self._quantum)
        self._numbering = spec.numbering
        self._free_numbers = frozenset(spec.free.numbers)
        for prefix in spec.free.prefixes:
            _check_prefix(prefix, "[free] prefixes")
        self._free_prefixes = tuple(spec.free.prefixes)
        self._free_types = frozenset(_check_type(t, "[free] types") for t in spec.free.types)
        # (prefix, number type or None) → class and prices
        self._prefixes: dict[tuple[str, str | None], tuple[str, Prices]] = {}
        for key, entry in spec.prefixes.items():
            prefix, _, number_type = key.partition(" ")
            _check_prefix(prefix, "[prefixes]")
            typed = _check_type(number_type.strip(), f"[prefixes] {key!r}") if number_type.strip() else None
            override = (
                entry
                if isinstance(entry, PrefixOverride)
                else PrefixOverride.model_validate({"class": entry})
            )
            base = spec.classes.get(override.call_class)
            if base is None:
                raise TariffError(
                    f"Prefix {key!r} names class {override.call_class!r}, "
                    f"which has no [classes.{override.call_class}] table"
                )
            changes = override.model_dump(exclude={"call_class"}, exclude_none=True)
            self._prefixes[prefix, typed] = (override.call_class, base.model_copy(update=changes))
        self._longest = max((len(p) for p, _ in self._prefixes), default=0)

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(self.spec.classes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tariff:
        try:
            return cls(TariffFile.model_validate(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
                for error in exc.errors()
            )
            raise TariffError(f"Invalid tariff: {problems}") from None

    @classmethod
    def from_toml(cls, text: str) -> Tariff:
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise TariffError(f"Invalid tariff: not valid TOML ({exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> Tariff:
        """Read and validate a tariff file (small and read once: fine to call at setup)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TariffError(f"Cannot read the tariff file {path}: {exc.strerror or exc}") from None
        try:
            return cls.from_toml(text)
        except TariffError as exc:
            raise TariffError(f"{path}: {exc}") from None

    # Numbers

    def normalise(self, dialled: str) -> str:
        """The dialled digits as E.164 (``+`` and digits); :class:`TariffError` if not a phone number."""
        numbering = self._numbering
        digits = self._clean(dialled)
        if digits.startswith("+"):
            number = digits
        elif numbering.international_prefix and digits.startswith(numbering.international_prefix):
            number = "+" + digits[len(numbering.international_prefix) :]
        elif numbering.trunk_prefix and digits.startswith(numbering.trunk_prefix):
            number = "+" + numbering.country_code + digits[len(numbering.trunk_prefix) :]
        elif numbering.area_code and (
            numbering.local_number_length is None or len(digits) <= numbering.local_number_length
        ):
            number = "+" + numbering.country_code + numbering.area_code + digits
        else:
            number = "+" + numbering.country_code + digits
        if not number[1:].isdigit() or not 4 <= len(number) - 1 <= 15:
            raise TariffError(f"{dialled!r} is not a phone number that can be rated")
        return number

    @staticmethod
    def display(number: str) -> str:
        """An E.164 number as its country writes it: ``+43 316 123456``, ``+48 22 123 45 67``."""
        import phonenumbers  # at first use: see the module docstring

        parsed = _parse(number)
        return (
            number
            if parsed is None
            else phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        )

    @staticmethod
    def number_type(number: str) -> str:
        """``mobile``, ``fixed``, ``premium``, ``toll-free`` … or ``unknown``, from the numbering plans."""
        import phonenumbers  # at first use: see the module docstring

        parsed = _parse(number)
        if parsed is None:
            return "unknown"
        return NUMBER_TYPES.get(
            phonenumbers.PhoneNumberType.to_string(phonenumbers.number_type(parsed)), "unknown"
        )

    def _clean(self, dialled: str) -> str:
        digits = _SEPARATORS.sub("", dialled)
        strip = self._numbering.strip
        if strip and digits.startswith(strip):
            digits = digits[len(strip) :]
        return digits

    # Rating

    def rate(self, dialled: str, billable_seconds: int) -> Rating:
        """Price a call of ``billable_seconds`` to ``dialled`` (as in the CDR's Destination).

        Raises :class:`TariffError` when the number is not a phone number or no prefix matches.
        """
        digits = self._clean(dialled)
        if digits in self._free_numbers or _SEPARATORS.sub("", dialled) in self._free_numbers:
            return self._free(dialled, billable_seconds, "emergency or service number")
        if digits.isdigit() and len(digits) <= self._numbering.internal_max_length:
            return self._free(dialled, billable_seconds, "internal number")
        number = self.normalise(dialled)
        display, kind = self.display(number), self.number_type(number)
        if number.startswith(self._free_prefixes) or kind in self._free_types:
            return Rating(number, display, kind, "free", "", billable_seconds, 0, self._zero, "toll-free")
        for length in range(min(len(number), self._longest), 0, -1):
            prefix = number[:length]
            found = self._prefixes.get((prefix, kind)) or self._prefixes.get((prefix, None))
            if found is not None:
                call_class, prices = found
                charged, amount = self._price(prices, billable_seconds)
                reason = "short call" if charged == 0 else None
                return Rating(
                    number, display, kind, call_class, prefix, billable_seconds, charged, amount, reason
                )
        raise TariffError(f'No tariff prefix matches {number} (add a catch-all "+" prefix)')

    def _free(self, dialled: str, billable_seconds: int, reason: str) -> Rating:
        return Rating(dialled, dialled, "", "free", "", billable_seconds, 0, self._zero, reason)

    def _price(self, prices: Prices, seconds: int) -> tuple[int, Decimal]:
        if seconds <= 0 or seconds <= prices.free_seconds:
            return 0, self._zero
        rest = max(0, seconds - prices.first_block)
        increments = -(-rest // prices.increment)  # ceiling division
        charged = prices.first_block + increments * prices.increment
        first = prices.first_block_price
        if first is None:
            first = prices.per_minute * prices.first_block / _SIXTY
        amount = prices.setup_fee + first + prices.per_minute * (increments * prices.increment) / _SIXTY
        amount = max(amount, prices.minimum)
        if prices.maximum is not None:
            amount = min(amount, prices.maximum)
        return charged, amount.quantize(self._quantum, rounding=ROUND_HALF_UP)


def _check_prefix(prefix: str, where: str) -> None:
    if not _PREFIX.fullmatch(prefix):
        raise TariffError(f'{where}: {prefix!r} is not an E.164 prefix such as "+4822" or "+"')


def _check_type(name: str, where: str) -> str:
    if name not in TYPE_NAMES:
        raise TariffError(f"{where}: {name!r} is not a number type ({', '.join(sorted(TYPE_NAMES))})")
    return name


def _parse(number: str) -> phonenumbers.PhoneNumber | None:
    import phonenumbers  # at first use: see the module docstring

    try:
        return phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return None
