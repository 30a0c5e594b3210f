"""Country profiles: how receipts are written, signed and checked."""

from __future__ import annotations

from .base import Profile, ReceiptData
from .generic import GenericProfile
from .rksv import RksvProfile

PROFILES: dict[str, type[Profile]] = {"rksv": RksvProfile, "generic": GenericProfile}


def make_profile(name: str, register_id: str, key_label: str, aes_key: bytes | None, zda: str) -> Profile:
    if name == "rksv":
        return RksvProfile(register_id, key_label, aes_key, zda)
    return PROFILES[name](register_id, key_label, aes_key)


__all__ = ["PROFILES", "GenericProfile", "Profile", "ReceiptData", "RksvProfile", "make_profile"]
