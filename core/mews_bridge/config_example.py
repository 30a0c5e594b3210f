"""``mews-bridge config example``: a commented settings file built from the installed plugins' option models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .plugins import PluginHost
from .settings import BridgeSettings, MewsSettings

_HEADER = """\
# mews-bridge settings. Every value can also come from the environment: MEWS_BRIDGE_<SECTION>__<KEY>,
# e.g. MEWS_BRIDGE_MEWS__ACCESS_TOKEN. Secrets are best kept there or in a file readable by the bridge only.
"""


def _toml_value(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):  # an inline table; TOML has no null, so unset keys are left out
        items = [f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(value if isinstance(value, str) else str(value))


def _toml_key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key) else json.dumps(key)


def _describe(name: str, field: FieldInfo) -> list[str]:
    lines = [f"# {line}".rstrip() for line in (field.description or "").splitlines()]
    if field.is_required():
        example = (field.examples or ["..."])[0]
        lines.append(f"{name} = {_toml_value(example)}    # required")
    else:
        default = field.get_default(call_default_factory=True)
        if default is None or default is PydanticUndefined:
            lines.append(f"# {name} =")
        else:
            lines.append(f"# {name} = {_toml_value(default)}")
    return lines


def _fields(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        if name not in skip:
            lines += _describe(name, field)
    return lines


def example_config(host: PluginHost) -> str:
    out = [_HEADER, "[mews]"]
    out += ['platform_url = "https://api.mews-demo.com"', 'websocket_url = "wss://ws.mews-demo.com"']
    out += ['client_token = "..."', 'access_token = "..."']
    out += _fields(MewsSettings, skip=("platform_url", "websocket_url", "client_token", "access_token"))
    out += ["", "[bridge]", *_fields(BridgeSettings)]
    out += [
        "",
        "[plugins]",
        '# load = ["escpos_printer"]    # only these (default: all installed)',
        "# disable = []",
    ]
    for name, cls in sorted(host.drivers.items()):
        out += ["", f"# --- driver {name} ({cls.plugin_version}): Mews {cls.device_type} devices"]
        out += [
            "[[devices]]",
            f'name = "My {cls.device_type.lower()}"',
            f'mews_device = "{cls.device_type} 1"    # the Mews device Id or its Name',
            f'driver = "{name}"',
            "[devices.options]",
        ]
        out += _fields(cls.Options)
    for name, cls in sorted(host.services.items()):
        out += [
            "",
            f"# --- service {name} ({cls.plugin_version})",
            "[[services]]",
            f'name = "{name}"',
            f'service = "{name}"',
            "[services.options]",
        ]
        out += _fields(cls.Options)
    return "\n".join(out) + "\n"
