"""Simulated hotel lock encoders for the ``serial_keycutter`` plugin (install the ``keycutter`` extra)."""

from .simulator import EncodedCard, EncoderSimulator

__all__ = ["EncodedCard", "EncoderSimulator"]
