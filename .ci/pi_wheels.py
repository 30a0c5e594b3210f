#!/usr/bin/env python3
"""Does every runtime dependency of mews-bridge install on a Raspberry Pi from wheels, with no compiler?

Run by ``.ci/pi-wheels``. The runtime distributions are the core (``pyproject.toml``) and the plugins
(``plugins/*/pyproject.toml``), each with its extras (fiscal ``[print]``); ``mews-bridge*``
requirements are replaced by those distributions' own dependencies, as they are not on the index.
pip resolves all of it for each Pi platform with ``--only-binary=:all:``: wheels only, nothing can be
built. The platforms (both CPython 3.11 and glibc 2.36):

* aarch64: Raspberry Pi OS Bookworm 64-bit (Pi 3, 4, 5, Zero 2 W).
* armv7l: Raspberry Pi OS Bookworm 32-bit (armhf userland) on a Pi 2, 3, 4 or 5.

A wheel fits if it is ``py3-none-any``, or a cp311/abi3 wheel tagged ``manylinux2014``,
``manylinux_2_17`` … ``manylinux_2_36`` or ``linux_<arch>`` (piwheels' tag) for the architecture.

When pip cannot resolve a platform, every compiled package is looked up on its own (``pip index
versions`` for the platform) so that all gaps are named, not only the first. A gap listed in
``EXCEPTIONS`` (with its reason) is accepted; any other fails the check. Warnings: a package whose
newest release has no wheel for the platform while an older one has (a plain ``pip install`` would
pick the newest and compile it; ``--only-binary=:all:`` takes the older), and requirements behind
``platform_machine`` markers (pip evaluates markers for the machine it runs on).

The wheels are downloaded into the cache directory, which doubles as a wheelhouse for an offline
install: ``pip install --no-index --find-links CACHE/wheelhouse/aarch64 …``.

Exit status: 0 every dependency has a wheel (documented exceptions allowed); 1 something would need
a compiler; 2 the index could not be asked (network, pip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # a bare interpreter: pip's copy
    from pip._vendor.packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ("3.11", "3.11.2")  # Raspberry Pi OS Bookworm's python3
GLIBC_MINOR = 36  # Bookworm's glibc 2.36: manylinux_2_17 … manylinux_2_36 wheels fit

PLATFORMS = {
    "aarch64": "Raspberry Pi OS Bookworm 64-bit (Pi 3, 4, 5, Zero 2 W)",
    "armv7l": "Raspberry Pi OS Bookworm 32-bit (armhf) on a Pi 2, 3, 4 or 5",
}
# Only to learn which release a plain `pip install` would pick: the newest with a wheel anywhere.
REFERENCE = ("x86_64", "aarch64", "armv7l")

# (platform, package) -> why its missing wheel is accepted. Found by this script: no release of these
# has an armv7l wheel on PyPI. Raspberry Pi OS configures pip with piwheels as an extra index, which
# builds cp311 linux_armv7l wheels of them; piwheels is not reachable from CI and its builds of new
# releases lag or fail at times (piwheels/packages#482 and #626: pillow for Python 3.11), so the guide
# installs with --only-binary=:all: and pip takes the newest release piwheels has built instead of
# compiling. `.ci/pi-wheels --extra-index-url <piwheels' simple index>` checks these for real.
_PIWHEELS = "32-bit Pi: wheel from piwheels (see docs/deploy/raspberry-pi.md, 'A 32-bit system')"
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("armv7l", "pillow"): f"Used by the printer plugins (ESC/POS, IPP) and fiscal [print]. {_PIWHEELS}",
    ("armv7l", "cffi"): f"Used by cryptography (fiscal plugin). {_PIWHEELS}",
    ("armv7l", "pyyaml"): f"Used by python-escpos (printer plugin). {_PIWHEELS}",
}
NON_RUNTIME_EXTRAS = {"dev", "test", "tests", "docs", "lint"}
# pip gets these from the environment (where the index is, how to reach it) and nothing else:
# configuration files and other PIP_* variables are ignored, so local wheel directories or extra
# indexes on the machine running the check cannot hide a gap.
PIP_ENV_KEPT = {
    "PIP_INDEX_URL",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_TRUSTED_HOST",
    "PIP_PROXY",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_TIMEOUT",
    "PIP_RETRIES",
}


# pip reports an index it cannot reach as "no matching distribution" too; these tell the two apart.
_NETWORK_TROUBLE = re.compile(
    r"Retrying \(|Could not fetch URL|NewConnectionError|ConnectTimeout|ProxyError|SSLError"
    r"|HTTP error \d+|403 Client Error|404 Client Error"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- what to check ---------------------------------------------------------------------------------


@dataclass
class Distribution:
    name: str
    pyproject: Path
    requires: list[str]
    extras: dict[str, list[str]]

    def requirements(self, dists: dict[str, Distribution]) -> tuple[list[str], list[str]]:
        """Requirement lines for installing this distribution with its runtime extras; the extras."""
        extras = sorted(set(self.extras) - NON_RUNTIME_EXTRAS)
        lines: list[str] = []
        seen: set[tuple[str, str]] = set()

        def add(dist: Distribution, wanted: list[str]) -> None:
            for extra in ["", *wanted]:
                if (dist.name, extra) in seen:
                    continue
                seen.add((dist.name, extra))
                for line in dist.extras.get(extra, []) if extra else dist.requires:
                    req = Requirement(line)
                    name = canonical(req.name)
                    if not name.startswith("mews-bridge"):
                        if line not in lines:
                            lines.append(line)
                    elif name in dists:
                        add(dists[name], sorted(req.extras))
                    else:
                        raise SystemExit(
                            f"{dist.pyproject}: {line!r} is not a distribution of this repository"
                        )

        add(self, extras)
        return lines, extras


def read_distributions() -> dict[str, Distribution]:
    dists = {}
    for path in [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]:
        project = tomllib.loads(path.read_text())["project"]
        name = canonical(project["name"])
        dists[name] = Distribution(
            name, path, project.get("dependencies", []), project.get("optional-dependencies", {})
        )
    return dists


# -- pip -------------------------------------------------------------------------------------------


def platform_tags(arch: str) -> list[str]:
    tags = [f"manylinux2014_{arch}", *(f"manylinux_2_{minor}_{arch}" for minor in range(17, GLIBC_MINOR + 1))]
    return tags + ([f"linux_{arch}"] if arch != "x86_64" else [])


@dataclass
class Package:
    name: str  # canonical
    version: str
    filename: str  # "" until known
    requires_dist: list[str]

    @property
    def pure(self) -> bool:
        return self.filename.endswith("-none-any.whl")

    @property
    def tag(self) -> str:
        return "-".join(self.filename.removesuffix(".whl").split("-")[-3:])


@dataclass
class Resolution:
    packages: dict[str, Package]
    missing: str | None = None  # pip stopped at this package: no wheel
    error: str = ""  # pip failed otherwise

    @property
    def ok(self) -> bool:
        return self.missing is None and not self.error


class Pip:
    def __init__(self, cache: Path, index_args: list[str]) -> None:
        self.cache = cache
        self.index_args = index_args
        self.calls = 0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in PIP_ENV_KEPT}
        self.env.update(
            PIP_CONFIG_FILE=os.devnull,
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_INPUT="1",
            PIP_CACHE_DIR=str(cache / "pip-cache"),
        )

    def target(self, archs: tuple[str, ...]) -> list[str]:
        args = [
            "--only-binary=:all:",
            "--python-version",
            PYTHON[0],
            "--implementation",
            "cp",
            "--abi",
            "cp" + PYTHON[0].replace(".", ""),
            *self.index_args,
        ]
        return args + [arg for arch in archs for tag in platform_tags(arch) for arg in ("--platform", tag)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.calls += 1
        return subprocess.run(
            [sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=self.env, check=False
        )

    def resolve(self, reqs: list[str], archs: tuple[str, ...], label: str) -> Resolution:
        work = self.cache / "work" / label
        work.mkdir(parents=True, exist_ok=True)
        (work / "requirements.txt").write_text("\n".join(reqs) + "\n")
        report = work / "report.json"
        report.unlink(missing_ok=True)
        proc = self.run(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--target",
            str(work / "target"),
            *self.target(archs),
            "-r",
            str(work / "requirements.txt"),
        )
        if proc.returncode != 0 and _NETWORK_TROUBLE.search(proc.stderr):
            return Resolution({}, error=_tail(proc.stderr))
        if proc.returncode != 0:
            found = re.findall(
                r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)", proc.stderr
            )
            return (
                Resolution({}, missing=canonical(found[-1]))
                if found
                else Resolution({}, error=_tail(proc.stderr))
            )
        packages = {}
        for item in json.loads(report.read_text())["install"]:
            meta = item["metadata"]
            filename = item["download_info"]["url"].rsplit("/", 1)[-1].split("#")[0]
            packages[canonical(meta["name"])] = Package(
                canonical(meta["name"]), meta["version"], filename, meta.get("requires_dist") or []
            )
        return Resolution(packages)

    def wheel_versions(self, name: str, arch: str) -> list[str] | None:
        """Releases of ``name`` with a wheel for ``arch``, newest first; None if pip could not tell."""
        proc = self.run("index", "versions", "--json", *self.target((arch,)), name)
        if proc.returncode == 0:
            return json.loads(proc.stdout)["versions"]
        if "No matching distribution found" in proc.stderr and not _NETWORK_TROUBLE.search(proc.stderr):
            return []
        return None

    def download(self, packages: list[Package], arch: str) -> Path:
        dest = self.cache / "wheelhouse" / arch
        pins = sorted(f"{p.name}=={p.version}" for p in packages)
        proc = self.run("download", "--no-deps", "--quiet", "-d", str(dest), *self.target((arch,)), *pins)
        if proc.returncode != 0:
            raise PipError(f"downloading the {arch} wheels failed:\n{_tail(proc.stderr)}")
        for pkg in packages:
            pkg.filename = pkg.filename or _find_wheel(dest, pkg)
        return dest


class PipError(Exception):
    pass


def _find_wheel(directory: Path, pkg: Package) -> str:
    for path in directory.glob("*.whl"):
        name, version = path.name.split("-")[:2]
        if canonical(name) == pkg.name and version == pkg.version:
            return path.name
    return ""


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def closure(reqs: list[str], packages: dict[str, Package], arch: str) -> set[str]:
    """Names of the packages that installing ``reqs`` on ``arch`` pulls in, as far as ``packages`` go."""
    env = {
        "python_version": PYTHON[0],
        "python_full_version": PYTHON[1],
        "platform_machine": arch,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    names: set[str] = set()
    todo = [(Requirement(line), "") for line in reqs]
    done: set[tuple[str, str]] = set()
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonical(req.name)
        names.add(name)
        pkg = packages.get(name)
        for want in ["", *sorted(req.extras)]:
            if pkg is None or (name, want) in done:
                continue
            done.add((name, want))
            todo += [(Requirement(line), want) for line in pkg.requires_dist]
    return names


# -- the check -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="default: all")
    parser.add_argument("--cache", type=Path, help="downloads and pip's cache (default: in $TMPDIR)")
    parser.add_argument("--index-url", help="the index to ask (default: $PIP_INDEX_URL, else pip's default)")
    parser.add_argument(
        "--extra-index-url",
        action="append",
        default=[],
        help="another index, e.g. piwheels' simple index, which makes the armv7l exceptions moot",
    )
    parser.add_argument("--no-download", action="store_true", help="resolve only; do not fetch the wheels")
    args = parser.parse_args(argv)
    started = time.monotonic()
    archs = tuple(args.platform or PLATFORMS)
    cache = args.cache or Path(tempfile.gettempdir()) / "mews-bridge-pi-wheels"
    cache.mkdir(parents=True, exist_ok=True)
    index = (["--index-url", args.index_url] if args.index_url else []) + [
        arg for url in args.extra_index_url for arg in ("--extra-index-url", url)
    ]
    pip = Pip(cache, index)
    try:
        return check(pip, archs, not args.no_download, started)
    except PipError as exc:
        print(f"\nERROR: {exc}")
        return 2


def check(pip: Pip, archs: tuple[str, ...], download: bool, started: float) -> int:
    dists = read_distributions()
    plans = {name: dist.requirements(dists) for name, dist in dists.items()}
    union = list(dict.fromkeys(line for reqs, _ in plans.values() for line in reqs))
    print(f"Pi wheel check: CPython {PYTHON[0]}, glibc 2.{GLIBC_MINOR}, wheels only (cache {pip.cache})")
    for name, (reqs, extras) in plans.items():
        print(f"  {name}{'[' + ','.join(extras) + ']' if extras else ''}: {', '.join(reqs)}")

    # One resolution of everything per platform, and one for the reference, in parallel.
    with ThreadPoolExecutor(4) as pool:
        jobs = {
            key: pool.submit(pip.resolve, union, plats, key)
            for key, plats in [*((arch, (arch,)) for arch in archs), ("reference", REFERENCE)]
        }
        results = {key: job.result() for key, job in jobs.items()}
    reference = results.pop("reference")
    for key, res in [*results.items(), ("reference", reference)]:
        if res.error:
            raise PipError(f"pip could not resolve the dependencies for {key}:\n{res.error}")

    # Where pip gave up, ask about every compiled package on its own so that all gaps are named.
    probe = sorted(
        {
            (arch, p.name)
            for arch, res in results.items()
            if not res.ok
            for p in reference.packages.values()
            if not p.pure
        }
        | {(arch, res.missing) for arch, res in results.items() if res.missing}
    )
    with ThreadPoolExecutor(8) as pool:
        versions = dict(
            zip(probe, pool.map(lambda key: pip.wheel_versions(key[1], key[0]), probe), strict=True)
        )
    if any(v is None for v in versions.values()):
        raise PipError(
            "pip could not list the releases of "
            + ", ".join(n for (_, n), v in versions.items() if v is None)
        )

    failed = False
    summary = []
    for arch, res in results.items():
        arch_failed, line = report_platform(
            pip, arch, res, reference=reference, versions=versions, plans=plans, download=download
        )
        failed |= arch_failed
        summary.append(line)

    markers = sorted(
        {
            f"{p.name} requires {r}"
            for p in reference.packages.values()
            for r in p.requires_dist
            if "platform_machine" in r and "extra ==" not in r
        }
    )
    if markers:
        print("\nnote: pip evaluated these markers for this machine, not the Pi: " + "; ".join(markers))
    elapsed = time.monotonic() - started
    print(
        f"\npi-wheels: {'FAILED' if failed else 'OK'}: {'; '.join(summary)} ({pip.calls} pip runs, {elapsed:.0f} s)"
    )
    return 1 if failed else 0


def report_platform(
    pip: Pip,
    arch: str,
    res: Resolution,
    *,
    reference: Resolution,
    versions: dict[tuple[str, str], list[str] | None],
    plans: dict[str, tuple[list[str], list[str]]],
    download: bool,
) -> tuple[bool, str]:
    """Print what one platform gets; return whether it fails and its line of the summary."""
    print(f"\n== {arch}: {PLATFORMS[arch]}")
    if res.ok:
        wheels, gaps = res.packages, {}
    elif not reference.ok:
        # No wheel of it for any platform: the rest of the tree cannot even be listed.
        print(
            f"  FAIL       {res.missing}: no release has a wheel for any platform; "
            "it would need a compiler (the rest was not checked)"
        )
        return True, f"{arch} FAIL ({res.missing})"
    else:
        wheels, gaps = newest_wheels(arch, reference, versions)

    tree = wheels if res.ok else reference.packages
    for name, (reqs, _) in plans.items():
        needed = closure(reqs, tree, arch)
        missing = sorted(needed & set(gaps))
        if not missing:
            print(f"  {name:30} ok: {len(needed)} wheels")
            continue
        accepted = all((arch, gap) in EXCEPTIONS for gap in missing)
        print(
            f"  {name:30} {'ok, with documented exceptions' if accepted else 'NEEDS A COMPILER'}: "
            f"no {arch} wheel for {', '.join(missing)}"
        )
    if download and wheels:
        dest = pip.download(list(wheels.values()), arch)
        print(f"  {len(wheels)} wheels in {dest}")
    compiled = sorted((p for p in wheels.values() if not p.pure), key=lambda p: p.name)
    print(
        "  compiled:  "
        + ", ".join(f"{p.name} {p.version}" + (f" ({p.tag})" if p.filename else "") for p in compiled)
    )
    print(f"  pure Python: {sum(p.pure for p in wheels.values())} wheels")
    failed = report_gaps(arch, wheels, gaps)
    for warning in older_than_newest(arch, wheels, reference):
        print(f"  warning    {warning}")
    bad = [g for g in gaps if (arch, g) not in EXCEPTIONS]
    accepted_gaps = sorted(set(gaps) - set(bad))
    return failed, (
        f"{arch} "
        + (f"FAIL ({', '.join(bad)})" if bad else "ok")
        + (f", exceptions: {', '.join(accepted_gaps)}" if accepted_gaps else "")
    )


def newest_wheels(
    arch: str, reference: Resolution, versions: dict[tuple[str, str], list[str] | None]
) -> tuple[dict[str, Package], dict[str, str]]:
    """Where pip gave up on ``arch``: the reference's packages with a release that has an ``arch``
    wheel (the reference's version where it has one), and the gaps (package -> what is missing)."""
    wheels: dict[str, Package] = {}
    gaps: dict[str, str] = {}
    for pkg in reference.packages.values():
        found = versions.get((arch, pkg.name), [pkg.version] if pkg.pure else [])
        if pkg.pure:
            wheels[pkg.name] = pkg
        elif not found:
            gaps[pkg.name] = f"no release has a wheel for {arch}"
        else:
            wheels[pkg.name] = Package(
                pkg.name, pkg.version if pkg.version in found else found[0], "", pkg.requires_dist
            )
    return wheels, gaps


def report_gaps(arch: str, wheels: dict[str, Package], gaps: dict[str, str]) -> bool:
    """Print each missing wheel and each stale exception; whether a gap has no documented exception."""
    failed = False
    for name, detail in gaps.items():
        reason = EXCEPTIONS.get((arch, name))
        if reason:
            print(f"  exception  {name}: {detail}. {reason}")
        else:
            failed = True
            print(f"  FAIL       {name}: {detail}; it would need a compiler on the Pi")
    for (plat, name), _reason in EXCEPTIONS.items():
        if plat == arch and name not in gaps:
            why = "has a wheel now" if name in wheels else "is no longer a dependency"
            print(f"  note       {name} {why}: remove its entry from EXCEPTIONS")
    return failed


def older_than_newest(arch: str, wheels: dict[str, Package], reference: Resolution) -> list[str]:
    """Packages whose newest release has no ``arch`` wheel, so a plain ``pip install`` would compile."""
    warnings = set()
    for pkg in wheels.values():
        newest = reference.packages.get(pkg.name)
        if newest and newest.version != pkg.version:
            warnings.add(
                f"{pkg.name}: the newest release, {newest.version}, has no {arch} wheel; "
                f"--only-binary=:all: installs {pkg.version}, a plain pip install would compile"
            )
    return sorted(warnings)


if __name__ == "__main__":
    sys.exit(main())
