"""The fleet's deployment files agree with each other and with the bridge: the template unit with the
single unit, the guide's excerpts with the files, the alert rules with the metrics a bridge exposes.
(promtool checks and unit-tests the rules in .ci/fleet.)"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from mews_bridge.settings import BridgeSettings, listen_address
from mews_bridge.testing import bridge_settings, device, running_bridge, wait_for

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "deploy" / "systemd"
PROMETHEUS = ROOT / "deploy" / "prometheus"
GUIDE = ROOT / "docs" / "deploy" / "fleet.md"
PER_PROPERTY = {
    "Description",
    "ExecStart",
    "EnvironmentFile",
    "Environment",
    "StateDirectory",
    "SyslogIdentifier",
}


def unit(path: Path) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> values, as systemd reads the file."""
    settings: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def test_the_template_is_the_single_unit_with_per_property_paths():
    single, template = unit(SYSTEMD / "mews-bridge.service"), unit(SYSTEMD / "mews-bridge@.service")
    assert set(single) == set(template)
    for (section, key), values in single.items():
        if key in PER_PROPERTY:
            assert all("%i" in value for value in template[section, key]), key
        else:
            assert template[section, key] == values, key
    assert template["Service", "ExecStart"] == [
        "/opt/mews-bridge/bin/mews-bridge --config /etc/mews-bridge/%i.toml run"
    ]
    assert template["Service", "StateDirectory"] == ["mews-bridge/%i"]


def test_the_guides_excerpts_are_in_the_files():
    blocks = re.findall(r"<!-- file: (\S+) -->\s*```\w*\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 3
    for path, excerpt in blocks:
        assert excerpt in (ROOT / path).read_text(), path


def test_the_rules_name_the_alerts_the_issue_asks_for_and_parse():
    rules = yaml.safe_load((PROMETHEUS / "mews-bridge.rules.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert alerts["MewsBridgeDeviceDown"]["for"] == "5m"
    assert alerts["MewsBridgeWebSocketDown"]["for"] == "2m"
    assert {"MewsBridgeChargeFailed", "MewsBridgeFiscalClosingMissing"} <= set(alerts)
    for name, rule in alerts.items():
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("page", "ticket"), name
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["mews-bridge.rules.yml"]
    yaml.safe_load((PROMETHEUS / "mews-bridge.rules.test.yml").read_text())


def test_the_container_listens_where_the_health_check_asks():
    dockerfile = (ROOT / "deploy" / "container" / "Dockerfile").read_text()
    port = listen_address(re.search(r"MEWS_BRIDGE_BRIDGE__HTTP=(\S+)", dockerfile).group(1))[1]
    assert f"EXPOSE {port}" in dockerfile
    assert f"http://127.0.0.1:{port}/healthz" in dockerfile
    assert listen_address(BridgeSettings().http)[1] == port


async def test_every_metric_the_rules_and_guide_use_is_exposed(mews_simulator, tmp_path, scripted):
    log_file = tmp_path / "runs.log"
    log_file.touch()
    printer = mews_simulator.add_device("Desk printer", "Printer")
    settings = bridge_settings(
        mews_simulator,
        tmp_path / "state",
        devices=[device("Desk printer", printer, "scripted_printer", {"log_file": log_file})],
    )
    async with running_bridge(settings, {"scripted": scripted}) as bridge, httpx.AsyncClient() as http:
        await wait_for(lambda: bridge.instances[0].state.value == "loaded")
        exposition = (await http.get(f"{bridge.http.url}/metrics")).text
    declared = dict(re.findall(r"^# TYPE (mews_bridge_\w+) (\w+)", exposition, re.M))
    exposed = {
        name.removesuffix("_total") + "_total" if kind == "counter" else name
        for name, kind in declared.items()
    }
    documented = {
        f"mews_bridge_{name}"
        for name in re.findall(r"^\| `(\w+)` \| (?:counter|gauge|histogram) \|", GUIDE.read_text(), re.M)
    }
    assert documented == exposed
    used = set(re.findall(r"\bmews_bridge_\w+", (PROMETHEUS / "mews-bridge.rules.yml").read_text()))
    assert used - exposed == set()
