"""mews-bridge: the on-premise bridge between Mews and hotel hardware.

This module is the API plugins use; the modules under it are the core's own and may change. The
exceptions are two submodules imported by name: :mod:`mews_bridge.testing` (helpers for plugins'
tests) and :mod:`mews_bridge.metrics` (the device figures some plugins report). ``docs/plugins/hooks.md``
lists what each name is for.
"""

from . import metrics, testing
from .cli import CliState
from .documents import PDFIUM_LOCK, DocumentError, decode_file_data
from .driver import CommandJob, DeviceDriver, Instance, InstanceContext, LocalDevices, NoOptions, Service
from .exceptions import (
    CommandError,
    CommandFailed,
    CommandRejected,
    ConfigurationError,
    DeviceAuthFailed,
    DeviceConfigError,
    DeviceNotReady,
    MewsBridgeError,
)
from .hookspecs import hookimpl
from .inputs import describe_validation_error, is_encodable, is_guid
from .journal import JournalError, KeyValueStore
from .mews.client import MewsClient
from .mews.enterprise import Enterprise
from .mews.errors import MewsAuthError, MewsError, MewsOutcomeUnknown, MewsRequestError, MewsUnavailable
from .mews.models import (
    FINAL_STATES,
    Bill,
    Customer,
    Device,
    DeviceCommand,
    FiscalMachineData,
    KeyCutterData,
    NewOrder,
    OrderItemParameters,
    PassportScannerData,
    PaymentTerminalData,
    PrinterData,
    Reservation,
    Resource,
    TaxRate,
)
from .mews.models import Service as MewsService
from .option_types import TimeZoneName
from .settings import DeviceEntry, ServiceEntry, Settings, format_validation_error
from .status import ChargeBook, ChargeLine, PostsCharges
from .version import __version__

__all__ = [
    "FINAL_STATES",
    "PDFIUM_LOCK",
    "Bill",
    "ChargeBook",
    "ChargeLine",
    "CliState",
    "CommandError",
    "CommandFailed",
    "CommandJob",
    "CommandRejected",
    "ConfigurationError",
    "Customer",
    "Device",
    "DeviceAuthFailed",
    "DeviceCommand",
    "DeviceConfigError",
    "DeviceDriver",
    "DeviceEntry",
    "DeviceNotReady",
    "DocumentError",
    "Enterprise",
    "FiscalMachineData",
    "Instance",
    "InstanceContext",
    "JournalError",
    "KeyCutterData",
    "KeyValueStore",
    "LocalDevices",
    "MewsAuthError",
    "MewsBridgeError",
    "MewsClient",
    "MewsError",
    "MewsOutcomeUnknown",
    "MewsRequestError",
    "MewsService",
    "MewsUnavailable",
    "NewOrder",
    "NoOptions",
    "OrderItemParameters",
    "PassportScannerData",
    "PaymentTerminalData",
    "PostsCharges",
    "PrinterData",
    "Reservation",
    "Resource",
    "Service",
    "ServiceEntry",
    "Settings",
    "TaxRate",
    "TimeZoneName",
    "__version__",
    "decode_file_data",
    "describe_validation_error",
    "format_validation_error",
    "hookimpl",
    "is_encodable",
    "is_guid",
    "metrics",
    "testing",
]
