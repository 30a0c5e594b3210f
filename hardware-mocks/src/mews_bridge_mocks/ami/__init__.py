"""Asterisk AMI simulator (needs the ``pbx`` extra: it reuses the plugin's codec)."""

from .simulator import AMI_VERSION, AmiSimulator

__all__ = ["AMI_VERSION", "AmiSimulator"]
