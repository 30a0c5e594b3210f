"""CUPS' IPP Everywhere reference printer, ``ippeveprinter`` (Debian ``cups-ipp-utils``), on loopback.

It will not start without a DNS-SD daemon ("Unable to initialize DNS-SD"). :class:`DnsSd` starts the
system D-Bus and avahi-daemon when they are not running (this needs root) and stops only what it
started; avahi gets a configuration of its own that keeps it on the loopback interface, so nothing is
announced to the network.

:class:`EvePrinter` runs one printer: ``-n localhost`` (it listens on 127.0.0.1 and ::1 only), a spool
directory whose files are kept (``-k``), and :mod:`.engine` as its print command, so jobs finish as
soon as their pages are counted. Its media and supplies web forms change its state while it runs:
:meth:`EvePrinter.set_paper` empties or fills the trays (``media-empty``, ``media-needed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from .engine import HOLD_FILE

PACKAGES = "cups-ipp-utils avahi-daemon dbus"
"""The Debian packages that bring ippeveprinter and a DNS-SD daemon."""
AVAHI_CONFIG = """\
[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
"""
DBUS_SOCKET = Path("/run/dbus/system_bus_socket")
AVAHI_SOCKET = Path("/run/avahi-daemon/socket")


class Unavailable(Exception):
    """ippeveprinter cannot run here; the message says what is missing."""


def missing() -> str | None:
    """Why ippeveprinter cannot run here, or None."""
    absent = [
        tool for tool in ("ippeveprinter", "ippevepcl", "avahi-daemon", "dbus-daemon") if not _which(tool)
    ]
    if absent:
        return f"{', '.join(absent)} not installed (Debian: apt-get install {PACKAGES})"
    if not (DBUS_SOCKET.exists() and AVAHI_SOCKET.exists()) and os.geteuid() != 0:
        return "no DNS-SD daemon runs and only root can start one"
    return None


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


class DnsSd:
    """The system D-Bus and avahi-daemon, started when missing; :meth:`stop` stops only those."""

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir
        self._dbus_pid: int | None = None
        self._avahi_started = False

    def start(self) -> None:
        if not _bus_answers():
            DBUS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            DBUS_SOCKET.unlink(missing_ok=True)
            (DBUS_SOCKET.parent / "pid").unlink(missing_ok=True)  # left by a bus that was killed
            started = subprocess.run(
                [_which("dbus-daemon") or "dbus-daemon", "--system", "--fork", "--print-pid"],
                capture_output=True,
                text=True,
                check=True,
            )
            self._dbus_pid = int(started.stdout.split()[0])
            _wait_for(DBUS_SOCKET.exists, "the system D-Bus socket")
        if not _avahi_answers():
            config = self._work_dir / "avahi-daemon.conf"
            config.write_text(AVAHI_CONFIG)
            avahi = _which("avahi-daemon") or "avahi-daemon"
            subprocess.run([avahi, "--kill"], capture_output=True, check=False)  # a stale pid file
            subprocess.run(
                [avahi, "--daemonize", "--no-drop-root", "--no-chroot", "--no-rlimits", "-f", str(config)],
                capture_output=True,
                check=True,
            )
            self._avahi_started = True
            _wait_for(_avahi_answers, "avahi-daemon")

    def stop(self) -> None:
        if self._avahi_started:
            subprocess.run(
                [_which("avahi-daemon") or "avahi-daemon", "--kill"], capture_output=True, check=False
            )
            self._avahi_started = False
        if self._dbus_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._dbus_pid, 15)
            self._dbus_pid = None


def _bus_answers() -> bool:
    return _socket_answers(DBUS_SOCKET)


def _avahi_answers() -> bool:
    return _socket_answers(AVAHI_SOCKET)


def _socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _wait_for(check: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} did not come up within {timeout_s:g} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EvePrinter:
    """One running ippeveprinter; ``uri`` is its IPP address, ``spool`` where its jobs land."""

    def __init__(
        self,
        work_dir: Path,
        *,
        name: str = "Office printer",
        formats: str = "application/pdf,image/pwg-raster,image/jpeg",
        duplex: bool = False,
    ) -> None:
        self.spool = work_dir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self._work_dir = work_dir
        self.name = name
        self.formats = formats
        self.duplex = duplex
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = work_dir / "ippeveprinter.log"

    @property
    def uri(self) -> str:
        return f"ipp://localhost:{self.port}/ipp/print"

    @property
    def ipps_uri(self) -> str:
        return f"ipps://localhost:{self.port}/ipp/print"

    def start(self) -> EvePrinter:
        command = self._work_dir / "print-engine"
        command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mews_bridge_mocks.ipp.engine "$@"\n')
        command.chmod(0o755)
        args = [
            _which("ippeveprinter") or "ippeveprinter",
            "-n",
            "localhost",
            "-p",
            str(self.port),
            "-d",
            str(self.spool),
            "-k",
            "-c",
            str(command),
            "-f",
            self.formats,
            "-K",
            str(self._work_dir / "keys"),
        ]
        if self.duplex:
            args.append("-2")
        (self._work_dir / "keys").mkdir(exist_ok=True)
        env = {**os.environ, "HOME": str(self._work_dir)}  # its self-signed certificate goes there
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([*args, self.name], stdout=log, stderr=subprocess.STDOUT, env=env)
        _wait_for(self._listening, f"ippeveprinter on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise Unavailable(f"ippeveprinter exited: {self.log.read_text(errors='replace').strip()[-500:]}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # --- state changes while it runs (its web forms) ---

    def set_paper(self, sheets: int) -> None:
        """Every tray loaded with A4 and ``sheets`` sheets: 0 is media-empty, under 25 media-low."""
        # Sources 1 and 3 are "main" and "by-pass-tray" (0 is "auto", 2 "manual").
        query = "&".join(
            f"size{tray}=iso_a4_210x297mm&type{tray}=stationery&level{tray}={sheets}" for tray in (1, 3)
        )
        self._get(f"/media?{query}")

    def set_toner(self, percent: int) -> None:
        """The toner level (supply 1): under 10 % is toner-low, 0 is toner-empty."""
        self._get(f"/supplies?supply0=25&supply1={percent}")

    def _get(self, path: str) -> None:
        with urlopen(f"http://localhost:{self.port}{path}", timeout=5) as reply:
            reply.read()

    def hold(self) -> None:
        """Jobs stop after their first page until :meth:`release`."""
        (self.spool / HOLD_FILE).touch()

    def release(self) -> None:
        (self.spool / HOLD_FILE).unlink(missing_ok=True)

    def results(self) -> list[dict[str, Any]]:
        """What the engine found in each job's document, in job order."""
        found = [path for path in self.spool.glob("*.json")]
        found.sort(key=lambda path: int(path.name.split("-", 1)[0]))
        return [json.loads(path.read_text()) | {"file": path.name[: -len(".json")]} for path in found]

    async def wait_results(self, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found := self.results()) < count:
            if loop.time() > deadline:
                raise AssertionError(f"ippeveprinter printed {len(found)} jobs, not {count}")
            await asyncio.sleep(0.05)
        return found
