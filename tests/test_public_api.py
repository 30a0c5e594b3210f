"""The API plugins use is ``mews_bridge`` itself: its names are pinned, and plugins use nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import mews_bridge

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_SUBMODULES = {"mews_bridge.testing", "mews_bridge.metrics"}

API = [
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


def test_the_public_api_is_exactly_these_names():
    # Removing or renaming one breaks plugins: change it on purpose, with the docs, never by accident.
    assert mews_bridge.__all__ == API
    missing = [name for name in API if not hasattr(mews_bridge, name)]
    assert not missing


def test_every_public_name_is_documented_for_plugin_authors():
    hooks = (ROOT / "docs" / "plugins" / "hooks.md").read_text()
    undocumented = [name for name in API if f"`{name}`" not in hooks]
    assert not undocumented


def _internal_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            for name in names
            if name.startswith("mews_bridge.") and name not in PUBLIC_SUBMODULES
        ]
    return found


def test_plugins_and_the_template_use_only_the_public_api():
    sources = [*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("templates/**/*.py")]
    assert len(sources) > 20  # the globs found the plugins
    assert [line for path in sources for line in _internal_imports(path)] == []
