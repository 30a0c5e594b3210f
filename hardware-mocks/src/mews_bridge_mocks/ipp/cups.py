"""A private CUPS scheduler (``cupsd``, Debian ``cups-daemon``) on a loopback port, for printing through a
real CUPS queue: its own configuration, spool and logs in a work directory, nothing shared with a
system CUPS. Queues are raw (the document goes to the printer as it is) and point at an ippeveprinter.
cupsd starts as root and runs its backends as ``lp``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .ippeveprinter import Unavailable, _wait_for, free_port

PACKAGES = "cups-daemon cups-client"
CUPSD_CONF = """\
Listen 127.0.0.1:{port}
LogLevel warn
Browsing No
WebInterface No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow 127.0.0.1
</Location>
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""
CUPS_FILES_CONF = """\
ServerRoot {root}/conf
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
TempDir {root}/tmp
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
User lp
Group lp
SystemGroup root
"""


def missing() -> str | None:
    """Why a private cupsd cannot run here, or None."""
    absent = [
        tool
        for tool in ("cupsd", "lpadmin", "cupsdisable")
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin")
    ]
    if absent:
        return f"{', '.join(absent)} not installed (Debian: apt-get install {PACKAGES})"
    if os.geteuid() != 0:
        return "cupsd starts as root"
    try:
        pwd.getpwnam("lp")
    except KeyError:
        return "there is no lp user for cupsd's backends"
    return None


class CupsServer:
    def __init__(self, work_dir: Path) -> None:
        self.root = work_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"localhost:{self.port}"

    def queue_uri(self, name: str) -> str:
        return f"ipp://localhost:{self.port}/printers/{name}"

    def start(self) -> CupsServer:
        for directory in ("conf", "spool", "cache", "state", "tmp", "log"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        lp = pwd.getpwnam("lp")
        for directory in ("spool", "cache", "state", "tmp", "log"):
            os.chown(self.root / directory, 0, lp.pw_gid)
            (self.root / directory).chmod(0o775)
        self.root.chmod(0o755)
        conf = self.root / "conf"
        (conf / "cupsd.conf").write_text(CUPSD_CONF.format(port=self.port))
        (conf / "cups-files.conf").write_text(CUPS_FILES_CONF.format(root=self.root))
        self.process = subprocess.Popen(
            ["cupsd", "-f", "-c", str(conf / "cupsd.conf"), "-s", str(conf / "cups-files.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(self._listening, f"cupsd on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = self.root / "log" / "error_log"
            raise Unavailable(
                f"cupsd exited: {log.read_text(errors='replace')[-500:] if log.exists() else ''}"
            )
        return (
            subprocess.run(["lpstat", "-h", self.server, "-r"], capture_output=True, check=False).returncode
            == 0
        )

    def add_queue(self, name: str, device_uri: str) -> str:
        """A raw queue sending to ``device_uri``, enabled and accepting; its IPP URI."""
        self._admin("lpadmin", "-p", name, "-v", device_uri, "-E")
        return self.queue_uri(name)

    def disable(self, name: str) -> None:
        """Stop the queue (``printer-state`` stopped, ``paused``), as ``cupsdisable`` does."""
        self._admin("cupsdisable", name)

    def _admin(self, *args: str) -> None:
        subprocess.run([args[0], "-h", self.server, *args[1:]], capture_output=True, check=True, timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
