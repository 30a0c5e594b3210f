"""The ``options`` table of an ``asterisk_pbx`` service.

Example::

    [[services]]
    name = "Telephone exchange"
    service = "asterisk_pbx"
    [services.options]
    host = "127.0.0.1"
    username = "mewsbridge"
    secret = "change-me"
    service_id = "…"                    # mews-bridge pbx setup lists the services
    tariff = "/etc/mews-bridge/tariff.toml"
    rooms = "{room}"
    timezone = "Europe/Warsaw"
    [services.options.accounting_categories]
    local = "…"
    international = "…"

The tariff file and the room map are read and checked here, so ``mews-bridge check`` reports their
mistakes before the bridge starts.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from mews_bridge import TimeZoneName

from .charges import SharedRoomCharge
from .credit import CreditPolicy
from .housekeeping import HousekeepingOptions
from .rooms import DEFAULT_FAMILY, RoomMap, RoomMapError
from .tariff import Tariff, TariffError
from .wakeups import WakeupOptions


class AsteriskPbxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Asterisk's AMI address")
    port: int = Field(5038, ge=1, le=65535)
    username: str = Field(min_length=1, description="The manager.conf user")
    secret: SecretStr
    auth: Literal["plain", "md5"] = Field("plain", description="md5 keeps the secret off the wire")
    service_id: str = Field(min_length=1, description="Mews service call charges are posted under")
    tariff: Path = Field(description="Tariff file (TOML)")
    rooms: str | dict[str, str] = Field(
        "{room}", description="Extension ↔ room: a map, or a pattern such as '2{room}'"
    )
    timezone: TimeZoneName | None = Field(
        None, description="The PBX host's time zone (default: the property's)"
    )
    accounting_categories: dict[str, str] = Field(
        default_factory=dict, description="Tariff class → Mews accounting category id"
    )
    tax_code: str | None = Field(
        None, description="Mews tax rate code of call charges (default: the standard rate, from Mews)"
    )
    astdb_family: str = Field(
        DEFAULT_FAMILY,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="AstDB family of the room keys (the dialplan's HOTEL)",
    )
    outbound_contexts: list[str] = Field(
        default_factory=list, description="Charge only calls dialled in these contexts (default: any)"
    )
    retention_days: float = Field(90, gt=0, description="Posted charges are forgotten after this")
    retry_max_s: float = Field(300, gt=0, description="Longest wait between tries to post a charge")
    max_call_seconds: int = Field(
        24 * 3600, ge=1, description="A call billed for longer is held as failed, not posted"
    )
    max_call_charge: Decimal = Field(
        Decimal(500),
        gt=0,
        allow_inf_nan=False,
        description="A call priced higher (tariff currency) is held as failed",
    )
    housekeeping: HousekeepingOptions = Field(
        default_factory=HousekeepingOptions,
        description="Room status codes (*52*PIN*STATUS): staff and states",
    )
    shared_room_charge: SharedRoomCharge = Field(
        "owner",
        description="Who pays in a room with several guests: the reservation's owner, or the first guest",
    )
    credit_policy: CreditPolicy | None = Field(
        None,
        description="Bar outside calls on credit: 'limit' (open balance over credit_limit) or 'prepaid' "
        "(payments below charges); default off ('limit' when credit_limit is set)",
    )
    credit_limit: Decimal | None = Field(
        None, ge=0, allow_inf_nan=False, description="Open balance allowed under 'limit' (property currency)"
    )
    credit_recheck_s: float = Field(
        300,
        ge=30,
        description="How often a barred guest's balance is read again (a deposit reopens the line)",
    )
    products: dict[str, str] = Field(
        default_factory=dict,
        description="Article code dialled with *51*ARTICLE*QTY → Mews product id (pbx setup lists them)",
    )
    max_article_count: int = Field(20, ge=1, le=999, description="Most of one article ordered at once")
    wakeup: WakeupOptions = Field(
        default_factory=WakeupOptions, description="Wake-up calls: channel, tries, reception, Mews task"
    )

    _tariff: Tariff = PrivateAttr()

    @field_validator("rooms")
    @classmethod
    def _valid_rooms(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        try:
            RoomMap.from_option(value)
        except RoomMapError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("products")
    @classmethod
    def _article_codes(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [k for k in value if not (k.isdigit() and len(k) <= 6)]
        if wrong:
            raise ValueError(f"article codes are up to six digits, not {', '.join(map(repr, wrong))}")
        return value

    @model_validator(mode="after")
    def _load_tariff(self) -> AsteriskPbxOptions:
        try:
            self._tariff = Tariff.load(self.tariff)
        except TariffError as exc:
            raise ValueError(str(exc)) from None
        unknown = sorted(set(self.accounting_categories) - self._tariff.classes)
        if unknown:
            raise ValueError(
                f"accounting_categories names {', '.join(unknown)}, not a class of the tariff "
                f"(its classes: {', '.join(sorted(self._tariff.classes))})"
            )
        return self

    @model_validator(mode="after")
    def _credit(self) -> AsteriskPbxOptions:
        if self.credit_policy is None and self.credit_limit is not None:
            self.credit_policy = "limit"
        if self.credit_policy == "limit" and self.credit_limit is None:
            raise ValueError(
                "credit_policy 'limit' needs credit_limit (an amount in the property's currency)"
            )
        return self

    @property
    def loaded_tariff(self) -> Tariff:
        return self._tariff

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)

    def room_map(self, resources: list[str] | None = None) -> RoomMap:
        return RoomMap.from_option(self.rooms, resources)
