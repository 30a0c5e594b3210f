"""The bridge's HTTP server over real sockets: settings, access, /healthz, /readyz and /metrics."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mews_bridge.exceptions import ConfigurationError
from mews_bridge.settings import load_settings
from mews_bridge.testing import (
    bridge_settings,
    device,
    run_cli,
    running_bridge,
    wait_for,
    wait_for_final_state,
    write_settings_file,
)

TOKEN = "correct-horse-battery-staple"


@pytest.fixture
def printer(mews_simulator):
    return mews_simulator.add_device("Desk printer", "Printer")


def _settings(mews_simulator, tmp_path, log_file, printer, **bridge):
    return bridge_settings(
        mews_simulator,
        tmp_path / "state",
        devices=[device("Desk printer", printer, "scripted_printer", {"log_file": log_file})],
        bridge=bridge,
    )


UP = (
    "mews_bridge_device_up",
    (("device", "Desk printer"), ("implementation", "scripted_printer"), ("kind", "device")),
)


def _client(bridge):
    return httpx.AsyncClient(base_url=bridge.http.url)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_beyond_loopback_needs_a_token(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[mews]\nclient_token = "c"\naccess_token = "a"\n[bridge]\nhttp = "0.0.0.0:8765"\n')
    with pytest.raises(ConfigurationError, match=r"bridge: .*http_token"):
        load_settings(path, required=True)
    path.write_text(path.read_text() + f'http_token = "{TOKEN}"\n')
    assert load_settings(path, required=True).bridge.http == "0.0.0.0:8765"


@pytest.mark.parametrize("address", ["8765", "127.0.0.1:", "127.0.0.1:99999", ":8765"])
def test_a_malformed_address_is_refused(tmp_path, address):
    path = tmp_path / "config.toml"
    path.write_text(f'[mews]\nclient_token = "c"\naccess_token = "a"\n[bridge]\nhttp = "{address}"\n')
    with pytest.raises(ConfigurationError, match=r"bridge\.http"):
        load_settings(path, required=True)


async def test_the_bridge_refuses_to_start_on_a_public_address_without_a_token(mews_simulator, tmp_path):
    settings = bridge_settings(mews_simulator, tmp_path / "state")
    path = write_settings_file(settings, tmp_path / "config.toml")
    assert '"http" = "127.0.0.1:0"' in path.read_text()
    path.write_text(path.read_text().replace('"http" = "127.0.0.1:0"', '"http" = "0.0.0.0:0"'))
    result = await run_cli("--config", path, "run")
    assert result.code == 78
    assert "http_token" in result.err
    assert mews_simulator.access_token not in result.err


async def test_health_readiness_and_metrics(mews_simulator, tmp_path, log_file, printer, scripted):
    settings = _settings(mews_simulator, tmp_path, log_file, printer)
    async with running_bridge(settings, {"scripted": scripted}) as bridge:
        assert bridge.http is not None and bridge.http.url is not None
        async with httpx.AsyncClient(base_url=bridge.http.url) as http:
            assert (await http.get("/healthz")).text == "ok\n"
            await wait_for(lambda: bridge.instances[0].state.value == "loaded")
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.text) == (200, "ready\n")

            before = _samples((await http.get("/metrics")).text)
            command_id = mews_simulator.add_command(printer, scripted.printer_data(notes="Printed"))
            await wait_for_final_state(mews_simulator, command_id)
            response = await http.get("/metrics")
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            after = _samples(response.text)

    processed = ("mews_bridge_commands_total", (("device", "Desk printer"), ("state", "Processed")))
    assert after[processed] == before.get(processed, 0) + 1
    duration = ("mews_bridge_command_duration_seconds_count", (("device", "Desk printer"),))
    assert after[duration] == before.get(duration, 0) + 1
    updates = ("mews_bridge_mews_requests_total", (("operation", "commands/update"), ("status", "200")))
    assert after[updates] > before.get(updates, 0)
    assert after[UP] == 1
    assert after[("mews_bridge_websocket_connected", ())] == 1
    assert after[("mews_bridge_journal_bytes", ())] > 0
    assert ("process_resident_memory_bytes", ()) in after


async def test_readyz_names_what_is_not_ready(mews_simulator, tmp_path, log_file, printer, scripted):
    settings = bridge_settings(
        mews_simulator,
        tmp_path / "state",
        devices=[
            device("Desk printer", printer, "scripted_printer", {"log_file": log_file, "not_ready": True})
        ],
    )
    async with running_bridge(settings, {"scripted": scripted}) as bridge:
        await wait_for(lambda: bridge.instances[0].state.value == "setup_retry")
        async with httpx.AsyncClient(base_url=bridge.http.url) as http:
            response = await http.get("/readyz")
            metrics = _samples((await http.get("/metrics")).text)
    assert response.status_code == 503
    assert "device Desk printer: setup_retry (Desk printer is switched off)" in response.text
    assert metrics[("mews_bridge_ready", ())] == 0
    assert metrics[UP] == 0


async def test_a_token_guards_everything_but_healthz(mews_simulator, tmp_path, log_file, printer, scripted):
    settings = _settings(mews_simulator, tmp_path, log_file, printer, http_token=TOKEN)
    async with running_bridge(settings, {"scripted": scripted}) as bridge, _client(bridge) as http:
        assert (await http.get("/healthz")).status_code == 200
        for path in ("/readyz", "/metrics", "/status.json", "/diagnostics.json"):
            assert (await http.get(path)).status_code == 401, path
            wrong = await http.get(path, headers={"Authorization": "Bearer not-the-token-at-all"})
            assert wrong.status_code == 401, path
        page = await http.get("/")
        assert page.status_code == 401 and 'name="token"' in page.text
        authorised = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/metrics", headers=authorised)).status_code == 200
        for path in ("/", "/status.json", "/diagnostics.json", "/metrics", "/readyz"):
            body = (await http.get(path, headers=authorised)).text
            secrets = (TOKEN, mews_simulator.access_token, mews_simulator.client_token)
            assert not [secret for secret in secrets if secret in body], path
        # The sign-in form sets a session cookie that is not the token.
        signed = await http.post("/login", data={"token": TOKEN})
        assert signed.status_code == 303
        assert TOKEN not in signed.headers["set-cookie"] and "HttpOnly" in signed.headers["set-cookie"]
        assert (await http.get("/status.json")).status_code == 200


async def test_without_a_token_only_loopback_names_are_answered(
    mews_simulator, tmp_path, log_file, printer, scripted
):
    settings = _settings(mews_simulator, tmp_path, log_file, printer)
    async with running_bridge(settings, {"scripted": scripted}) as bridge, _client(bridge) as http:
        rebound = await http.get("/status.json", headers={"Host": "attacker.example"})
        assert rebound.status_code == 421
        assert (await http.get("/status.json", headers={"Host": "localhost"})).status_code == 200


async def test_a_port_in_use_does_not_stop_the_bridge(
    mews_simulator, tmp_path, log_file, printer, scripted, caplog
):
    settings = _settings(mews_simulator, tmp_path, log_file, printer)
    async with running_bridge(settings, {"scripted": scripted}) as first:
        taken = first.http.url.removeprefix("http://")
        again = _settings(mews_simulator, tmp_path / "second", log_file, printer, http=taken)
        async with running_bridge(again, {"scripted": scripted}) as second:
            assert second.http.url is None
            command_id = mews_simulator.add_command(printer, scripted.printer_data())
            assert (await wait_for_final_state(mews_simulator, command_id))["State"] == "Processed"
    assert "cannot listen on" in caplog.text


async def test_status_command_prints_the_running_bridges_picture(
    mews_simulator, tmp_path, log_file, printer, scripted
):
    settings = _settings(mews_simulator, tmp_path, log_file, printer, http_token=TOKEN)
    async with running_bridge(settings, {"scripted": scripted}) as bridge:
        await wait_for(lambda: bridge.instances[0].state.value == "loaded")
        command_id = mews_simulator.add_command(printer, scripted.printer_data(fail="Paper jam"))
        await wait_for_final_state(mews_simulator, command_id)
        address = bridge.http.url.removeprefix("http://")
        running = settings.model_copy(update={"bridge": settings.bridge.model_copy(update={"http": address})})
        path = write_settings_file(running, tmp_path / "config.toml")
        result = await run_cli("--config", path, "status")
        as_json = await run_cli("--config", path, "status", "--json")
    assert result.code == 0, result.err
    assert "READY" in result.out and "Mews: connected since" in result.out
    assert "Desk printer (scripted_printer): up" in result.out
    assert "last command Error at" in result.out and "Paper jam on Desk printer" in result.out
    assert TOKEN not in result.out and mews_simulator.access_token not in result.out
    assert json.loads(as_json.out)["commands"][0]["id"] == command_id

    stopped = await run_cli("--config", path, "status")
    assert stopped.code == 1 and "No bridge answers at" in stopped.err


async def test_the_retry_form_is_refused_from_another_site(
    mews_simulator, tmp_path, log_file, printer, scripted
):
    settings = _settings(mews_simulator, tmp_path, log_file, printer, http_token=TOKEN)
    async with running_bridge(settings, {"scripted": scripted}) as bridge, _client(bridge) as http:
        signed = await http.post("/login", data={"token": TOKEN}, headers={"Origin": bridge.http.url})
        assert signed.status_code == 303
        form = {"service": "Telephone exchange", "key": "cdr-1", "csrf": bridge.http.csrf_value()}
        forged = await http.post("/charges/retry", data=form, headers={"Origin": "http://attacker.example"})
        assert forged.status_code == 403
        stale = await http.post(
            "/charges/retry", data={**form, "csrf": "0" * 64}, headers={"Origin": bridge.http.url}
        )
        assert stale.status_code == 403
        sent = await http.post("/charges/retry", data=form, headers={"Origin": bridge.http.url})
        assert sent.status_code == 303
        page = await http.get(sent.headers["Location"])
    assert "No service called &#x27;Telephone exchange&#x27; posts charges here." in page.text


async def test_a_429_storm_and_a_dropped_stream_show_in_metrics_and_status(
    mews_simulator, tmp_path, log_file, printer, scripted
):
    settings = _settings(mews_simulator, tmp_path, log_file, printer)
    async with running_bridge(settings, {"scripted": scripted}) as bridge, _client(bridge) as http:
        before = _samples((await http.get("/metrics")).text)
        mews_simulator.faults.rate_limit_storm(0.3)
        command_id = mews_simulator.add_command(printer, scripted.printer_data())
        assert (await wait_for_final_state(mews_simulator, command_id))["State"] == "Processed"
        await mews_simulator.faults.drop_websockets()
        await wait_for(lambda: bridge.stream.connects >= 2, what="a reconnect")
        await wait_for(bridge.stream.connected.is_set, what="the stream back")
        after = _samples((await http.get("/metrics")).text)
        picture = (await http.get("/status.json")).json()
    throttled = ("mews_bridge_mews_throttled_total", ())
    assert after[throttled] > before.get(throttled, 0)
    reconnects = ("mews_bridge_websocket_reconnects_total", ())
    assert after[reconnects] >= before.get(reconnects, 0) + 1
    assert picture["mews"]["throttled_today"] >= 1
    assert picture["mews"]["connected"] is True and picture["mews"]["connected_since"]
    assert picture["mews"]["last_error"] == "the event stream was lost"


async def test_status_command_says_when_the_server_is_off(mews_simulator, tmp_path):
    settings = bridge_settings(mews_simulator, tmp_path / "state", bridge={"http": ""})
    result = await run_cli("--config", write_settings_file(settings, tmp_path / "config.toml"), "status")
    assert result.code == 1 and 'HTTP server is off (bridge.http = "")' in result.err
