"""Settings: a TOML file (``--config``, default ``/etc/mews-bridge/config.toml``) plus ``MEWS_BRIDGE_``
environment variables (``__`` for nesting: ``MEWS_BRIDGE_MEWS__ACCESS_TOKEN``). Environment wins.

Device and service ``options`` stay plain dicts here; each driver validates them with its own model
when the host builds the instance (:mod:`mews_bridge.plugins`), so errors can name the plugin too.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .exceptions import ConfigurationError
from .version import __version__

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("/etc/mews-bridge/config.toml")
_toml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_path", default=None)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MewsSettings(Strict):
    platform_url: str = "https://api.mews-demo.com"
    websocket_url: str = "wss://ws.mews-demo.com"
    client_token: SecretStr
    access_token: SecretStr
    client: str = f"mews-bridge {__version__}"
    requests_per_30s: int = Field(
        190,
        ge=1,
        description="Requests this bridge may send per 30 s: Mews allows 200 per access token, less "
        'headroom. Bridges sharing one token (unknown_devices = "leave") must split it',
    )
    rate_window_s: float = Field(30.0, gt=0, description="The window requests_per_30s counts over (tests)")

    @model_validator(mode="before")
    @classmethod
    def _renamed_budget(cls, data: Any) -> Any:
        """Settings files from version 0.1 gave the budget as rate_limit less a rate_headroom share."""
        if isinstance(data, dict) and ("rate_limit" in data or "rate_headroom" in data):
            data = dict(data)
            limit, headroom = data.pop("rate_limit", 200), data.pop("rate_headroom", 0.05)
            if "requests_per_30s" not in data:
                try:
                    data["requests_per_30s"] = max(1, int(float(limit) * (1 - float(headroom))))
                except (TypeError, ValueError):
                    raise ValueError("rate_limit and rate_headroom must be numbers") from None
            log.warning(
                "[mews] rate_limit and rate_headroom are replaced by requests_per_30s (now %s): "
                "please update the settings file",
                data["requests_per_30s"],
            )
        return data

    request_timeout_s: float = Field(30.0, gt=0)
    max_retry_s: float = Field(60.0, gt=0, description="Longest single wait between retries")
    ping_interval_s: float = Field(20.0, gt=0)
    ping_timeout_s: float = Field(20.0, gt=0)
    sweep_interval_s: float = Field(300.0, gt=0, description="Safety sweep of active commands")
    event_message_max_bytes: int = Field(
        1_048_576, ge=4096, description="A larger WebSocket message closes the connection, which reconnects"
    )

    @field_validator("platform_url", "websocket_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class BridgeSettings(Strict):
    state_dir: Path = Path("/var/lib/mews-bridge")
    unknown_devices: Literal["leave", "error"] = Field(
        "leave",
        description="Commands for Mews devices no [[devices]] entry serves: leave them for another "
        "bridge, or end them in Error",
    )
    command_max_age_h: float = Field(12.0, gt=0, description="Older commands end as expired")
    max_parallel_devices: int = Field(8, ge=1)
    progress_interval_s: float = Field(3.0, ge=0, description="Least time between Progress updates")
    shutdown_grace_s: float = Field(10.0, ge=0, description="How long running commands may finish")
    data_retention_days: float = Field(
        30.0,
        gt=0,
        description="Finished commands' data (device, Notes) are purged from the journal after this; "
        "ids and outcomes are kept a year, so a command is never run twice",
    )
    http: str = Field(
        "127.0.0.1:8765",
        description='Status page, /metrics, /healthz and /readyz at "host:port"; "" turns them off',
    )
    http_token: SecretStr | None = Field(
        None, description="Asked of every request but /healthz; required when http is not on loopback"
    )
    page_refresh_s: int = Field(5, ge=1, description="How often the status page reloads itself")

    @field_validator("http")
    @classmethod
    def _http_address(cls, value: str) -> str:
        if value.strip():
            listen_address(value)  # raises ValueError naming what is wrong
        return value.strip()

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> BridgeSettings:
        if self.http and not is_loopback(listen_address(self.http)[0]) and not self.http_token:
            raise ValueError(
                f"http = {self.http!r} is reachable from other machines: set bridge.http_token too "
                '(or listen on "127.0.0.1:PORT")'
            )
        if self.http_token is not None and len(self.http_token.get_secret_value()) < 16:
            raise ValueError("http_token must be at least 16 characters long")
        return self


def listen_address(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"``, ``"[::1]:8765"`` or ``"0.0.0.0:8765"`` as (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'{value!r} is not "host:port" (e.g. "127.0.0.1:8765")')
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class PluginSettings(Strict):
    # NoDecode: the environment gives "a, b" rather than JSON.
    load: Annotated[list[str] | None, NoDecode] = Field(None, description="Only these plugins (default: all)")
    disable: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("load", "disable", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class DeviceEntry(Strict):
    name: str = Field(min_length=1)
    mews_device: str = Field(min_length=1, description="The Mews device Id or its Name")
    driver: str
    options: dict[str, Any] = Field(default_factory=dict)


class ServiceEntry(Strict):
    name: str = Field(min_length=1)
    service: str
    options: dict[str, Any] = Field(default_factory=dict)


class _TomlAndEnvironment(BaseSettings):
    """Environment first, then the TOML file chosen by :func:`load_settings`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class Settings(_TomlAndEnvironment):
    model_config = SettingsConfigDict(
        env_prefix="MEWS_BRIDGE_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    mews: MewsSettings
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    devices: list[DeviceEntry] = Field(default_factory=list)
    services: list[ServiceEntry] = Field(default_factory=list)


class PluginSelection(_TomlAndEnvironment):
    """Just the ``[plugins]`` table, for commands that must work before the rest is configured."""

    model_config = SettingsConfigDict(env_prefix="MEWS_BRIDGE_", env_nested_delimiter="__", extra="ignore")

    plugins: PluginSettings = Field(default_factory=PluginSettings)


def load_settings(path: Path | None = None, *, required: bool = False, **overrides: Any) -> Settings:
    """Read settings from ``path`` (if it exists) and the environment.

    ``required`` makes a missing file an error (the user named it). Errors raise
    :class:`ConfigurationError` with one line per problem, each naming the setting's path.
    """
    return _load(Settings, path, required, overrides)


def load_plugin_selection(path: Path | None = None, *, required: bool = False) -> PluginSettings:
    return _load(PluginSelection, path, required, {}).plugins


_Model = TypeVar("_Model", bound=BaseSettings)


def _load(model: type[_Model], path: Path | None, required: bool, overrides: dict[str, Any]) -> _Model:
    path = path or DEFAULT_CONFIG_PATH
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. /etc/mews-bridge unreadable for this user
        raise ConfigurationError(f"{path}: cannot read the settings file ({exc.strerror})") from None
    if not exists:
        if required:
            raise ConfigurationError(f"{path}: settings file not found")
        path = None
    token = _toml_path.set(path)
    try:
        return model(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(format_validation_error(exc)) from None
    except ValueError as exc:  # TOML syntax
        raise ConfigurationError(f"{path}: {exc}") from None
    finally:
        _toml_path.reset(token)


def format_validation_error(exc: ValidationError, prefix: str = "", suffix: str = "") -> str:
    """One line per error: ``devices[1].options.connection: message``."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        path = prefix
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{path or '(top level)'}: {error['msg']}{suffix}")
    return "\n".join(lines)
