"""``mews-bridge-mocks new-driver``: the template comes out renamed, registrable and lint-clean.

Building, installing and testing the generated plugin as a vendor would is ``.ci/vendor-kit``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
from click.testing import CliRunner

from mews_bridge_mocks.cli import main
from mews_bridge_mocks.vendor_kit import checkout_template, generate

# Longer than the template's names, so a line that would outgrow the line length shows.
NAME = "acme_self_checkin_kiosk"
DEVICE_TYPE = "PassportScanner"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(NAME, DEVICE_TYPE, tmp_path_factory.mktemp("out"), checkout_template())


def test_every_name_is_replaced(project):
    assert project.name == "mews-bridge-acme-self-checkin-kiosk"
    assert sorted(path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/mews_bridge_acme_self_checkin_kiosk/__init__.py",
        "src/mews_bridge_acme_self_checkin_kiosk/connection.py",
        "src/mews_bridge_acme_self_checkin_kiosk/driver.py",
        "src/mews_bridge_acme_self_checkin_kiosk/options.py",
        "tests/conftest.py",
        "tests/test_driver.py",
        "tests/test_plugin.py",
    ]
    metadata = tomllib.loads((project / "pyproject.toml").read_text())
    assert metadata["project"]["name"] == "mews-bridge-acme-self-checkin-kiosk"
    assert metadata["project"]["entry-points"]["mews_bridge"] == {NAME: f"mews_bridge_{NAME}"}
    assert metadata["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [f"src/mews_bridge_{NAME}"]
    leftovers = re.compile(r"my.device|MyDevice|Printer", re.IGNORECASE)
    for path in project.rglob("*"):
        if path.is_file():
            assert not leftovers.findall(path.read_text()), path


def test_the_generated_package_registers_its_driver(project):
    code = (
        "import json, sys; from mews_bridge.testing import plugin_host; "
        f"import mews_bridge_{NAME} as plugin; "
        f"host = plugin_host({{'{NAME}': plugin}}); "
        "print(json.dumps({n: [c.__name__, c.device_type, c.Options.__name__] for n, c in host.drivers.items()}))"
    )
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert json.loads(result.stdout) == {
        NAME: ["AcmeSelfCheckinKioskDriver", DEVICE_TYPE, "AcmeSelfCheckinKioskOptions"]
    }


@pytest.mark.parametrize("name", [NAME, "lp"], ids=["long name", "short name"])
def test_the_generated_files_are_lint_clean(tmp_path, name):
    project = generate(name, DEVICE_TYPE, tmp_path, checkout_template())
    # The generated pyproject carries the ruff settings, so a vendor's own `ruff` agrees.
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *check, "--no-cache", "."],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_command_creates_the_folder_once(tmp_path):
    args = ["new-driver", "acme_kiosk", "--device-type", "KeyCutter", "--out", str(tmp_path)]
    created = CliRunner().invoke(main, args)
    assert created.exit_code == 0, created.output
    assert "package mews_bridge_acme_kiosk, driver acme_kiosk for Mews KeyCutter devices" in created.output
    assert (
        'device_type = "KeyCutter"'
        in (tmp_path / "mews-bridge-acme-kiosk/src/mews_bridge_acme_kiosk/driver.py").read_text()
    )

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1
    assert "mews-bridge-acme-kiosk already exists" in again.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Acme-Kiosk", "is not a plugin name"),
        ("acme__kiosk", "is not a plugin name"),
        ("mews_bridge_acme", "leave out the mews_bridge prefix: 'acme'"),
    ],
)
def test_names_that_cannot_be_a_plugin_are_refused(tmp_path, name, message):
    result = CliRunner().invoke(
        main, ["new-driver", name, "--device-type", "Printer", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert message in result.output
    assert not any(tmp_path.iterdir())
