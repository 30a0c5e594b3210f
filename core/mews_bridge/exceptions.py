"""Exceptions drivers and services raise to tell the host what happened.

Setup outcomes follow Home Assistant's config entries: ``DeviceNotReady`` is retried quietly with
capped backoff, ``DeviceConfigError`` and ``DeviceAuthFailed`` stop the instance and say why.
Command outcomes separate bad input from Mews (``CommandRejected``) from a device that failed
(``CommandFailed``); both end the command in ``Error`` with the message as its Notes, so write the
message for a front-desk user ("Paper out on Reception printer").
"""

from __future__ import annotations


class MewsBridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class DeviceNotReady(MewsBridgeError):
    """The device cannot be reached yet (switched off, unplugged): setup is retried later."""


class DeviceConfigError(MewsBridgeError):
    """The device's settings are wrong: setup stops until the settings are fixed."""


class DeviceAuthFailed(MewsBridgeError):
    """The device refused our credentials (PIN, password): setup stops until they are fixed."""


class CommandError(MewsBridgeError):
    """A command ends in ``Error``; ``notes`` is what the front desk sees in Mews."""

    def __init__(self, notes: str) -> None:
        super().__init__(notes)
        self.notes = notes


class CommandRejected(CommandError):
    """The command's data cannot be carried out as given (a missing field, an unknown room)."""


class CommandFailed(CommandError):
    """The device could not carry out a valid command (paper out, no card, timeout)."""


class ConfigurationError(MewsBridgeError):
    """The bridge's own settings are wrong; the message names the setting's path."""
