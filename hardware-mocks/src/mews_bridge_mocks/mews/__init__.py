"""A simulator of the Mews Connector API and its WebSocket, for tests, benchmarks and demos.

async with MewsSimulator() as sim:
    printer = sim.add_device("Reception printer", "Printer")
    ...  # point the bridge at sim.platform_url and sim.websocket_url
"""

from .auth import DEMO_ACCESS_TOKEN, DEMO_CLIENT_TOKEN
from .calls import RecordedCall
from .faults import Faults
from .simulator import MewsSimulator
from .state import BillPayment, LineItem

__all__ = [
    "DEMO_ACCESS_TOKEN",
    "DEMO_CLIENT_TOKEN",
    "BillPayment",
    "Faults",
    "LineItem",
    "MewsSimulator",
    "RecordedCall",
]
