"""The ``options`` table of each device the ``my_device`` driver serves (``[devices.options]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MyDeviceOptions(BaseModel):
    # extra="forbid" turns a misspelt option into an error naming it; the docstrings below become the
    # descriptions `mews-bridge config example` prints.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    host: str = Field(min_length=1, examples=["192.168.1.60"])
    """Host name or IP address of the device."""
    port: int = Field(9200, ge=1, le=65535)
    """TCP port the device listens on."""
    connect_timeout_s: float = Field(5.0, gt=0)
    """How long the device may take to accept a connection."""
    reply_timeout_s: float = Field(30.0, gt=0)
    """Longest silence from the device while it works on a command."""
