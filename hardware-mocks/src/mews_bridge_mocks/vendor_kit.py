"""``mews-bridge-mocks new-driver NAME --device-type TYPE``: a driver plugin distribution of your own.

It copies the template (``templates/driver-plugin`` in the mews-bridge repository), a working and
tested plugin called ``my_device``, with its names replaced:

======================  ==========================  ===============================================
in the template         for ``NAME`` = acme_kiosk   what it is
======================  ==========================  ===============================================
mews-bridge-my-device   mews-bridge-acme-kiosk      the distribution (``pip install``, the folder)
mews_bridge_my_device   mews_bridge_acme_kiosk      the import package
my_device               acme_kiosk                  the entry point and the driver's name
MyDevice                AcmeKiosk                   class names: ``AcmeKioskDriver``, ``…Options``
Printer                 ``--device-type``           the Mews device type the driver serves
======================  ==========================  ===============================================

The guide ``docs/plugins/writing-a-driver.md`` walks through what comes out.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import click

from mews_bridge.mews.models import DEVICE_TYPES

TEMPLATE_NAME = "my_device"
TEMPLATE_DEVICE_TYPE = "Printer"
_PLACEHOLDERS = re.compile(r"my-device|my_device|MyDevice|\bPrinter\b")
_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_NOT_COPIED = ("__pycache__", "*.pyc", ".*_cache", "*.egg-info", ".venv", "build", "dist")


def checkout_template() -> Path:
    """The template packaged in the wheel, or ``templates/driver-plugin`` of an editable checkout."""
    here = Path(__file__).resolve()
    for template in (
        here.parent / "templates" / "driver-plugin",
        here.parents[3] / "templates" / "driver-plugin",
    ):
        if (template / "pyproject.toml").is_file():
            return template
    raise FileNotFoundError(
        "The driver template was not found: pass --template with the path of templates/driver-plugin "
        "in a mews-bridge checkout"
    )


def names(name: str, device_type: str) -> dict[str, str]:
    """What each placeholder of the template becomes."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a plugin name: use lower-case letters, digits and single underscores, "
            "starting with a letter (e.g. acme_kiosk)"
        )
    if name.startswith("mews_bridge"):
        raise ValueError(f"leave out the mews_bridge prefix: {name.removeprefix('mews_bridge_')!r}")
    if device_type not in DEVICE_TYPES:
        raise ValueError(f"unknown device type {device_type!r}; Mews has {', '.join(DEVICE_TYPES)}")
    return {
        "my-device": name.replace("_", "-"),
        TEMPLATE_NAME: name,
        "MyDevice": "".join(part.capitalize() for part in name.split("_")),
        TEMPLATE_DEVICE_TYPE: device_type,
    }


def generate(name: str, device_type: str, out: Path, template: Path) -> Path:
    """Write the plugin ``mews-bridge-<name>`` into ``out`` and return its folder."""
    replacements = names(name, device_type)

    def render(text: str) -> str:
        return _PLACEHOLDERS.sub(lambda match: replacements[match.group(0)], text)

    target = out / render("mews-bridge-my-device")
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    for source in sorted(template.rglob("*")):
        relative = source.relative_to(template)
        if source.is_dir() or any(fnmatch.fnmatch(part, p) for part in relative.parts for p in _NOT_COPIED):
            continue
        destination = target / render(relative.as_posix())
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(render(source.read_text(encoding="utf-8")), encoding="utf-8")
    return target


@click.command("new-driver")
@click.argument("name")
@click.option(
    "--device-type",
    type=click.Choice(DEVICE_TYPES),
    required=True,
    help="The Mews device type the driver serves.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the mews-bridge-NAME folder.",
)
@click.option(
    "--template",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The template folder (default: templates/driver-plugin of this mews-bridge checkout).",
)
def command(name: str, device_type: str, out: Path, template: Path | None) -> None:
    """Create mews-bridge-NAME: a driver plugin for Mews devices of one type, with tests, ready to install.

    NAME is the plugin's and the driver's name, in snake_case (acme_kiosk).
    """
    try:
        target = generate(name, device_type, out, template or checkout_template())
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {target}: package mews_bridge_{name}, driver {name} for Mews {device_type} devices.")
    click.echo(f'Next:\n  cd {target}\n  pip install -e ".[test]"\n  python -m pytest\n  mews-bridge plugins')
