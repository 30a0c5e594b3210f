"""``mews-bridge ipp``: find the printers on the network and check one before configuring it."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import click

from .codec import IppOperation, IppTag, values
from .link import IppLink, LinkError, Unreachable, certificate_fingerprint
from .status import PrinterState

SERVICE_TYPES = ("_ipps._tcp.local.", "_ipp._tcp.local.")
CHECK_ATTRIBUTES = [
    "printer-make-and-model",
    "printer-info",
    "printer-location",
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
    "document-format-supported",
    "media-default",
    "media-supported",
    "sides-supported",
    "print-color-mode-supported",
]
PRINTER_STATES = {3: "idle", 4: "printing", 5: "stopped"}


@click.group()
def ipp() -> None:
    """IPP printers and CUPS queues (the ipp_printer driver)."""


@dataclass(frozen=True)
class Found:
    name: str
    uri: str
    model: str
    formats: str


@ipp.command()
@click.option(
    "--timeout", "timeout_s", default=3.0, show_default=True, help="Seconds to listen for announcements."
)
@click.option(
    "--interface",
    "interfaces",
    multiple=True,
    help="Listen only on this interface address (repeatable); by default on all.",
)
def discover(timeout_s: float, interfaces: tuple[str, ...]) -> None:
    """List the printers announced on the local network (DNS-SD: AirPrint, IPP Everywhere, CUPS)."""
    found = asyncio.run(_browse(timeout_s, list(interfaces)))
    if not found:
        click.echo(f"No printer announced itself within {timeout_s:g} s.")
        click.echo("A printer on another network segment is not announced here: use its address, as in")
        click.echo("  mews-bridge ipp check ipp://192.168.1.50/ipp/print")
        return
    for printer in found:
        click.echo(f'{printer.name}\n    uri = "{printer.uri}"')
        if printer.model:
            click.echo(f"    model: {printer.model}")
        if printer.formats:
            click.echo(f"    formats: {printer.formats}")
    click.echo("\nCheck one with: mews-bridge ipp check URI")


async def _browse(timeout_s: float, interfaces: list[str]) -> list[Found]:
    from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    zeroconf = AsyncZeroconf(
        interfaces=interfaces or InterfaceChoice.All,
        ip_version=IPVersion.V4Only if interfaces else IPVersion.All,
    )
    names: list[tuple[str, str]] = []

    def on_change(zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added and (service_type, name) not in names:
            names.append((service_type, name))

    browser = AsyncServiceBrowser(zeroconf.zeroconf, list(SERVICE_TYPES), handlers=[on_change])
    try:
        await asyncio.sleep(timeout_s)
        found: list[Found] = []
        for service_type, name in names:
            info = AsyncServiceInfo(service_type, name)
            if not await info.async_request(zeroconf.zeroconf, 3000):
                continue
            properties = {
                key.decode(errors="replace"): (value or b"").decode(errors="replace")
                for key, value in info.properties.items()
            }
            host = (info.server or "").rstrip(".") or (info.parsed_addresses() or ["?"])[0]
            if ":" in host:
                host = f"[{host}]"
            scheme = "ipps" if service_type.startswith("_ipps") else "ipp"
            path = properties.get("rp", "ipp/print").lstrip("/")
            label = name[: -len(service_type) - 1] if name.endswith(service_type) else name
            found.append(
                Found(
                    label,
                    f"{scheme}://{host}:{info.port}/{path}",
                    properties.get("ty", ""),
                    properties.get("pdl", ""),
                )
            )
        return sorted(found, key=lambda printer: (printer.name, printer.uri))
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()


@ipp.command()
@click.argument("uri")
@click.option(
    "--fingerprint", default=None, help="The pinned certificate fingerprint (tls_fingerprint) to check with."
)
@click.option(
    "--timeout", "timeout_s", default=10.0, show_default=True, help="Seconds to wait for the printer."
)
def check(uri: str, fingerprint: str | None, timeout_s: float) -> None:
    """Ask the printer at URI what it is and whether it can print now."""
    from .options import Options, parse_fingerprint

    try:
        options = Options(uri=uri, tls_fingerprint=fingerprint)
    except ValueError as exc:
        raise click.BadParameter(
            str(exc).splitlines()[-1].strip(), param_hint="URI or --fingerprint"
        ) from None
    code = asyncio.run(
        _check(options.uri, parse_fingerprint(fingerprint) if fingerprint else None, timeout_s)
    )
    sys.exit(code)


async def _check(uri: str, fingerprint: bytes | None, timeout_s: float) -> int:
    link = IppLink(uri, timeout_s, fingerprint=fingerprint)
    try:
        answer = await link.call(
            IppOperation.GET_PRINTER_ATTRIBUTES, [("requested-attributes", IppTag.KEYWORD, CHECK_ATTRIBUTES)]
        )
    except LinkError as exc:
        click.echo(f"{uri}: no answer: {exc}.")
        if isinstance(exc, Unreachable) and "certificate" in str(exc) and uri.startswith("ipps://"):
            await _show_fingerprint(uri, timeout_s)
        return 1
    finally:
        await link.close()
    attributes = answer.printers[0] if answer.printers else {}
    state = PrinterState.read(attributes)
    lines = [
        ("make and model", str(attributes.get("printer-make-and-model") or "?")),
        ("name", str(attributes.get("printer-info") or "")),
        ("location", str(attributes.get("printer-location") or "")),
        (
            "state",
            PRINTER_STATES.get(state.state or 0, str(state.state))
            + ("" if state.accepting else ", not accepting jobs"),
        ),
        ("reasons", ", ".join(state.reasons) or "none"),
        ("message", state.message),
        ("formats", ", ".join(map(str, values(attributes, "document-format-supported")))),
        ("media", ", ".join(map(str, values(attributes, "media-supported")))),
        ("default media", str(attributes.get("media-default") or "")),
        ("sides", ", ".join(map(str, values(attributes, "sides-supported")))),
        ("colour modes", ", ".join(map(str, values(attributes, "print-color-mode-supported")))),
    ]
    for label, value in lines:
        if value:
            click.echo(f"{label + ':':16}{value}")
    stop = state.stop_notes("The printer")
    formats = values(attributes, "document-format-supported")
    if not any(kind in formats for kind in ("application/pdf", "image/pwg-raster", "image/jpeg")):
        click.echo(
            "The bridge cannot print here: it sends PDF, PWG raster or JPEG, and the printer takes none."
        )
        return 1
    if stop:
        click.echo(f"Not ready: {stop}")
        return 1
    click.echo("Ready to print.")
    return 0


async def _show_fingerprint(uri: str, timeout_s: float) -> None:
    try:
        found = await certificate_fingerprint(uri, timeout_s)
    except (OSError, TimeoutError) as exc:
        click.echo(f"Its certificate could not be read either ({exc}).")
        return
    click.echo(
        "It presents a certificate the system does not trust (printers usually make their own). Its SHA-256\n"
        f"fingerprint is\n    {found}\nCompare it with the one on the printer's status page or configuration\n"
        "report; if they match, set it as the device's tls_fingerprint option."
    )
