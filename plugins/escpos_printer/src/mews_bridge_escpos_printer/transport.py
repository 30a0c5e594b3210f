"""Byte links to a printer, one class per ``connection`` scheme, all async.

TCP and device files (``/dev/usb/lp0``, FIFOs) use the event loop directly; pyserial and pyusb are
blocking, so their calls run in worker threads (``asyncio.to_thread``) and carry their own timeouts,
so that an abandoned call returns by itself.

Writes go in chunks, each of which must be taken within ``timeout`` seconds: a slow printer that
keeps taking data is fine, one that stops taking it fails the write with :class:`LinkTimeout`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from .options import Link

CHUNK_BYTES = 4096
DISCARD_READ_S = 0.01


class LinkError(Exception):
    """The link failed; the message says why in a few words ("Connection refused")."""


class LinkTimeout(LinkError):
    """The printer did not take data or answer within the timeout."""


def reason(exc: BaseException) -> str:
    """A short human reason for an OS-level failure."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class Transport(ABC):
    """An open-able byte link to one printer."""

    can_read: ClassVar[bool] = True

    def __init__(self, link: Link, timeout: float) -> None:
        self.link = link
        self.timeout = timeout

    @abstractmethod
    async def open(self) -> None:
        """Connect; raise :class:`LinkError` when the printer cannot be reached."""

    async def write(self, data: bytes) -> None:
        """Send ``data``; raise :class:`LinkTimeout` if a chunk is not taken in time."""
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_BYTES):
            try:
                async with asyncio.timeout(self.timeout):
                    await self._write_chunk(bytes(view[start : start + CHUNK_BYTES]))
            except TimeoutError:
                raise LinkTimeout(f"the printer took no data for {self.timeout:g} s") from None

    @abstractmethod
    async def _write_chunk(self, chunk: bytes) -> None: ...

    async def read(self) -> bytes:
        """Wait for bytes from the printer; may return b"" (callers loop under a timeout)."""
        raise LinkError("this link cannot read from the printer")

    async def discard_input(self) -> None:  # noqa: B027 - write-only links have no input
        """Drop bytes that arrived unasked (late replies, flow-control bytes)."""

    @abstractmethod
    async def close(self) -> None:
        """Close; never raises, never waits for a printer that stopped taking data."""


def make_transport(link: Link, timeout: float) -> Transport:
    """The transport for ``link``'s scheme."""
    kinds: dict[str, type[Transport]] = {
        "tcp": TcpTransport,
        "serial": SerialTransport,
        "usb": UsbTransport,
        "file": FileTransport,
    }
    return kinds[link.scheme](link, timeout)


class _StreamProtocol(asyncio.Protocol):
    """Collects incoming bytes and follows the transport's write flow control."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost: str | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def eof_received(self) -> bool:
        self.lost = "the printer closed the connection"
        self.arrived.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or (reason(exc) if exc else "the connection was closed")
        self.arrived.set()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class _LoopTransport(Transport):
    """A link driven by the event loop through a :class:`_StreamProtocol`."""

    _transport: asyncio.WriteTransport | None = None
    _protocol: _StreamProtocol

    async def _write_chunk(self, chunk: bytes) -> None:
        self._check()
        assert self._transport is not None
        self._transport.write(chunk)
        await self._protocol.writable.wait()
        self._check()

    def _check(self) -> None:
        if self._protocol.lost:
            raise LinkError(self._protocol.lost)

    async def close(self) -> None:
        if self._transport is None:
            return
        # A printer that stopped reading would keep a graceful close waiting for ever.
        if self._transport.get_write_buffer_size():
            self._transport.abort()
        else:
            self._transport.close()
        self._transport = None


class TcpTransport(_LoopTransport):
    """``tcp://host:9100``: raw TCP (JetDirect / AppSocket), as network receipt printers speak it."""

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                transport, protocol = await loop.create_connection(
                    _StreamProtocol, self.link.host, self.link.port
                )
        except TimeoutError:
            raise LinkTimeout(f"no connection within {self.timeout:g} s") from None
        except OSError as exc:
            raise LinkError(reason(exc)) from None
        self._transport, self._protocol = transport, protocol

    async def read(self) -> bytes:
        while not self._protocol.buffer:
            self._check()
            self._protocol.arrived.clear()
            await self._protocol.arrived.wait()
        data = bytes(self._protocol.buffer)
        self._protocol.buffer.clear()
        return data

    async def discard_input(self) -> None:
        self._protocol.buffer.clear()


class FileTransport(_LoopTransport):
    """``file:///dev/usb/lp0``: a printer device file (or a FIFO, or a plain file for a dump).

    Device files and FIFOs are written through the event loop; a plain file through a thread.
    Nothing can be read back, so there is no status.
    """

    can_read = False
    _file: Any = None

    async def open(self) -> None:
        def _open() -> int:
            return os.open(self.link.path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CREAT, 0o644)

        try:
            fd = await asyncio.to_thread(_open)
        except OSError as exc:
            if exc.errno == 6:  # ENXIO: a FIFO nobody reads
                raise LinkError("nothing is reading from it") from None
            raise LinkError(reason(exc)) from None
        self._file = os.fdopen(fd, "wb", buffering=0)
        mode = os.fstat(fd).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
            loop = asyncio.get_running_loop()
            self._transport, self._protocol = await loop.connect_write_pipe(_StreamProtocol, self._file)

    async def _write_chunk(self, chunk: bytes) -> None:
        if self._transport is not None:
            await super()._write_chunk(chunk)
            return
        try:
            await asyncio.to_thread(self._file.write, chunk)
        except OSError as exc:
            raise LinkError(reason(exc)) from None

    async def close(self) -> None:
        if self._transport is not None:
            await super().close()  # the pipe transport owns the file
        elif self._file is not None:
            self._file.close()
        self._file = None


class SerialTransport(Transport):
    """``serial:///dev/ttyUSB0?baudrate=19200``: RS-232 through pyserial, in a worker thread."""

    _port: Any = None

    async def open(self) -> None:
        settings = self.link.serial
        flow = settings["flow"]

        def _open() -> Any:
            import serial

            return serial.Serial(
                port=self.link.path,
                baudrate=int(settings["baudrate"]),
                bytesize=int(settings["bytesize"]),
                parity=str(settings["parity"]),
                stopbits=int(settings["stopbits"]),
                rtscts=flow == "rtscts",
                dsrdtr=flow == "dsrdtr",
                xonxoff=flow == "xonxoff",
                timeout=min(self.timeout, 1.0),
                write_timeout=self.timeout,
                exclusive=True,
            )

        try:
            self._port = await asyncio.to_thread(_open)
        except (OSError, ValueError) as exc:  # pyserial's SerialException is an OSError
            raise LinkError(reason(exc)) from None

    async def _write_chunk(self, chunk: bytes) -> None:
        import serial

        try:
            await asyncio.to_thread(self._port.write, chunk)
        except serial.SerialTimeoutException:
            raise LinkTimeout(
                f"the printer took no data for {self.timeout:g} s (check flow control)"
            ) from None
        except (serial.SerialException, OSError) as exc:
            raise LinkError(reason(exc)) from None

    async def read(self) -> bytes:
        import serial

        def _read() -> bytes:
            return bytes(self._port.read(max(self._port.in_waiting, 1)))

        try:
            return await asyncio.to_thread(_read)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(reason(exc)) from None

    async def discard_input(self) -> None:
        await asyncio.to_thread(self._port.reset_input_buffer)

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return

        def _close() -> None:
            # Closing a tty waits for unsent output (up to 30 s on Linux): drop it first.
            port.reset_output_buffer()
            port.close()

        try:
            await asyncio.to_thread(_close)
        except Exception:  # a vanished port must not hide the error that ended the job
            return


class UsbTransport(Transport):
    """``usb://04b8:0202``: the printer's bulk endpoints through pyusb (libusb), in a worker thread.

    The kernel's ``usblp`` driver is detached from the interface if it holds it.
    """

    _device: Any = None
    _out: Any = None
    _in: Any = None
    _interface: int = 0

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._open)
        except LinkError:
            raise
        except Exception as exc:  # pyusb raises USBError, NoBackendError (a ValueError)…
            raise LinkError(_usb_reason(exc)) from None

    def _open(self) -> None:
        import usb.core
        import usb.util

        device = usb.core.find(idVendor=self.link.vendor_id, idProduct=self.link.product_id)
        if device is None:
            raise LinkError(
                f"no USB device {self.link.vendor_id:04x}:{self.link.product_id:04x} is plugged in"
            )
        try:
            config = device.get_active_configuration()
        except usb.core.USBError:
            device.set_configuration()
            config = device.get_active_configuration()
        interface = usb.util.find_descriptor(config, bInterfaceClass=7) or config[(0, 0)]
        self._interface = interface.bInterfaceNumber
        try:
            if device.is_kernel_driver_active(self._interface):
                device.detach_kernel_driver(self._interface)
        except NotImplementedError:  # backends other than libusb 1.0 cannot tell
            pass
        usb.util.claim_interface(device, self._interface)
        self._device = device
        self._out = _bulk_endpoint(interface, usb.util.ENDPOINT_OUT)
        self._in = _bulk_endpoint(interface, usb.util.ENDPOINT_IN)
        if self._out is None:
            raise LinkError("the USB device has no printer data endpoint")

    @property
    def _ms(self) -> int:
        return max(int(self.timeout * 1000), 1)

    async def _write_chunk(self, chunk: bytes) -> None:
        try:
            await asyncio.to_thread(self._out.write, chunk, self._ms)
        except Exception as exc:  # any pyusb failure, timeouts included
            raise _usb_error(exc) from None

    async def read(self) -> bytes:
        if self._in is None:
            raise LinkError("this USB printer has no channel back to us")
        try:
            return bytes(await asyncio.to_thread(self._in.read, 64, min(self._ms, 1000)))
        except Exception as exc:  # any pyusb failure, timeouts included
            error = _usb_error(exc)
            if isinstance(error, LinkTimeout):
                return b""
            raise error from None

    async def discard_input(self) -> None:
        if self._in is None:
            return

        def _drain() -> None:
            import usb.core

            try:
                while self._in.read(64, int(DISCARD_READ_S * 1000)):
                    pass
            except usb.core.USBTimeoutError:
                pass

        await asyncio.to_thread(_drain)

    async def close(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return

        def _close() -> None:
            import usb.util

            usb.util.release_interface(device, self._interface)
            usb.util.dispose_resources(device)

        try:
            await asyncio.to_thread(_close)
        except Exception:  # an unplugged printer cannot be released
            return


def _bulk_endpoint(interface: Any, direction: int) -> Any:
    import usb.util

    def matches(endpoint: Any) -> bool:
        address, attributes = endpoint.bEndpointAddress, endpoint.bmAttributes
        return (
            usb.util.endpoint_direction(address) == direction
            and usb.util.endpoint_type(attributes) == usb.util.ENDPOINT_TYPE_BULK
        )

    return usb.util.find_descriptor(interface, custom_match=matches)


def _usb_reason(exc: Exception) -> str:
    import usb.core

    if isinstance(exc, usb.core.NoBackendError):
        return "libusb is not installed (apt install libusb-1.0-0)"
    if getattr(exc, "errno", None) == 13:
        return "permission denied (add a udev rule for the printer, see the README)"
    if getattr(exc, "errno", None) == 16:
        return "the device is busy (another program or the usblp driver holds it)"
    return reason(exc)


def _usb_error(exc: Exception) -> LinkError:
    import usb.core

    if isinstance(exc, usb.core.USBTimeoutError):
        return LinkTimeout("the printer took no data in time")
    return LinkError(_usb_reason(exc))
