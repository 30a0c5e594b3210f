"""ESC/POS printer simulator: byte-stream decoder, receipt renderer and a TCP printer on loopback."""

from .decoder import Command, EscposDecoder
from .renderer import PrintedReceipt, ReceiptRenderer
from .simulator import STATES, EmulatedPrinter, PrinterSimulator, Receipt

__all__ = [
    "STATES",
    "Command",
    "EmulatedPrinter",
    "EscposDecoder",
    "PrintedReceipt",
    "PrinterSimulator",
    "Receipt",
    "ReceiptRenderer",
]
