"""Export and offline verification: a clean export passes, any tampering is caught and named."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from mews_bridge import Settings
from mews_bridge.bridge import instance_state_dir
from mews_bridge.testing import device, write_settings_file
from mews_bridge_fiscal_virtual.cli import fiscal
from mews_bridge_fiscal_virtual.export import write_export
from mews_bridge_fiscal_virtual.journal import compute_entry_hash
from mews_bridge_fiscal_virtual.profiles.base import b64url_decode
from mews_bridge_fiscal_virtual.profiles.rksv import aes_key_check_value
from mews_bridge_fiscal_virtual.verify import VerificationError, verify_export

NEW = object()


@pytest.fixture
async def journal(harness, mk, sale_bill):
    """An RKSV journal with every kind of record: sales, storno, refund, null, Z, MONTH, on-demand Z."""

    def correction(ident: str, kind: str, corrected: str, items: list) -> dict:
        fields = {"CorrectionState": "CorrectiveBill", "CorrectionType": kind, "CorrectedBillId": corrected}
        return mk.legacy(mk.bill(ident, **fields, OrderItems=items, PaymentItems=[]))

    harness.clock.now = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
    driver = await harness.driver()
    await driver.execute(mk.job("c1", mk.legacy(sale_bill("b1", "1"))))
    harness.clock.advance(minutes=5)
    await driver.execute(mk.job("c2", correction("b1c", "Cancellation", "b1", [])))
    await driver.execute(mk.job("c3", mk.legacy(sale_bill("b2", "2"))))
    refund = [mk.item("r", "Room", "-5.50", "AT-10", "-0.50")]
    await driver.execute(mk.job("c4", correction("b2r", "CreditNote", "b2", refund)))
    free = mk.bill("b0", OrderItems=[mk.item("z", "Tea", "0.00", "AT-10")], PaymentItems=[])
    await driver.execute(mk.job("c5", mk.legacy(free)))
    harness.clock.now = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)  # next day, next month: Z and MONTH first
    await driver.execute(mk.job("c6", mk.legacy(sale_bill("b3", "3"))))
    await driver.z_report()
    return driver


def export_bytes(driver, tmp_path) -> bytes:
    path = tmp_path / "export.zip"
    write_export(driver.register, path, datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    return path.read_bytes()


def files_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zip_of(files: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    out.seek(0)
    return out


def lines_of(content: bytes) -> list[dict]:
    return [json.loads(line) for line in content.decode().splitlines()]


def jsonl(records: list[dict]) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for r in records
    )


def leaf_paths(value, prefix=()):
    """Every place a value can be changed or added."""
    if isinstance(value, dict):
        yield (*prefix, NEW)
        for key, item in value.items():
            yield from leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        yield (*prefix, NEW)
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*prefix, index))
    else:
        yield prefix


def tampered(value, path):
    value = copy.deepcopy(value)
    *parents, last = path
    target = value
    for part in parents:
        target = target[part]
    if last is NEW:
        target.append("x") if isinstance(target, list) else target.__setitem__("tampered", 1)
    else:
        old = target[last]
        target[last] = (
            not old
            if isinstance(old, bool)
            else old + 1
            if isinstance(old, int)
            else "x"
            if old is None
            else old + "x"
        )
    return value


def test_clean_export_verifies_and_matches_the_rksv_formats(journal, tmp_path):
    data = export_bytes(journal, tmp_path)
    report = verify_export(io.BytesIO(data))
    assert (report.entries, report.receipts, report.closings) == (10, 8, 3)
    assert report.key_fingerprint == journal.register.keys.fingerprint
    files = files_of(data)
    assert set(files) == {
        "METADATA.json",
        "entries.jsonl",
        "closings.jsonl",
        "dep-export.json",
        "cryptographicMaterialContainer.json",
        "SIGNATURE.txt",
    }
    receipts = [e.profile_code for e in journal.register.store.entries() if e.profile_code]
    dep = json.loads(files["dep-export.json"])
    assert dep == {
        "Belege-Gruppe": [
            {"Signaturzertifikat": "", "Zertifizierungsstellen": [], "Belege-kompakt": receipts}
        ]
    }
    container = json.loads(files["cryptographicMaterialContainer.json"])
    assert (
        aes_key_check_value(base64.b64decode(container["base64AESKey"]))
        == journal.register.store.first().payload["start"]["aes_key_check"]
    )
    assert container["certificateOrPublicKeyMap"]["U:ATU12345678-K1"]["signatureDeviceType"] == "PUBLIC_KEY"
    kinds = [r["payload"]["kind"] for r in lines_of(files["entries.jsonl"])]
    assert kinds == ["START", "SALE", "STORNO", "SALE", "REFUND", "NULL", "Z", "MONTH", "SALE", "Z"]
    assert [r["payload"]["kind"] for r in lines_of(files["closings.jsonl"])] == ["Z", "MONTH", "Z"]


def test_tampering_any_field_of_any_entry_is_caught_at_that_entry(journal, tmp_path):
    files = files_of(export_bytes(journal, tmp_path))
    records = lines_of(files["entries.jsonl"])
    checked = 0
    for line, record in enumerate(records, start=1):
        for path in leaf_paths(record):
            # Later records cannot hide an earlier break; leaving them out keeps the test fast.
            forged = [*records[: line - 1], tampered(record, path)]
            with pytest.raises(VerificationError) as caught:
                verify_export(zip_of(files | {"entries.jsonl": jsonl(forged)}))
            assert f"entries.jsonl line {line} " in str(caught.value), (path, str(caught.value))
            checked += 1
    assert checked > 400


@pytest.mark.parametrize("name", ["METADATA.json", "cryptographicMaterialContainer.json", "dep-export.json"])
def test_tampering_any_field_of_the_other_files_is_caught(journal, tmp_path, name):
    files = files_of(export_bytes(journal, tmp_path))
    document = json.loads(files[name])
    for path in leaf_paths(document):
        forged = json.dumps(tampered(document, path)).encode()
        with pytest.raises(VerificationError, match=name.replace(".", r"\.")):
            verify_export(zip_of(files | {name: forged}))


def test_tampered_closings_file_or_signature_is_caught(journal, tmp_path):
    files = files_of(export_bytes(journal, tmp_path))
    lines = files["closings.jsonl"].decode().splitlines(keepends=True)
    for index in range(len(lines)):
        changed = lines[index].replace('"Z"', '"Y"', 1).replace("MONTH", "M0NTH", 1)
        forged = [*lines[:index], changed, *lines[index + 1 :]]
        with pytest.raises(VerificationError, match=rf"closings\.jsonl line {index + 1}"):
            verify_export(zip_of(files | {"closings.jsonl": "".join(forged).encode()}))
    with pytest.raises(VerificationError, match=r"closings\.jsonl lists 2 closings, the journal 3"):
        verify_export(zip_of(files | {"closings.jsonl": "".join(lines[:2]).encode()}))
    body, _, _ = files["SIGNATURE.txt"].decode().rstrip("\n").rpartition(" ")
    other = base64.b64encode(bytes(64)).decode()
    with pytest.raises(VerificationError, match="manifest's signature is not valid"):
        verify_export(zip_of(files | {"SIGNATURE.txt": f"{body} {other}\n".encode()}))
    extra = files | {"notes.txt": b"added later"}
    with pytest.raises(VerificationError, match=r"notes\.txt is not in the signed manifest"):
        verify_export(zip_of(extra))


def test_a_removed_entry_is_named_as_a_gap(journal, tmp_path):
    files = files_of(export_bytes(journal, tmp_path))
    records = lines_of(files["entries.jsonl"])
    with pytest.raises(
        VerificationError, match=r"entries.jsonl line 4 \(seq 5, receipt AT-REG1-5\): seq 5 follows seq 3"
    ):
        verify_export(zip_of(files | {"entries.jsonl": jsonl(records[:3] + records[4:])}))


def test_rechaining_without_the_key_fails_on_the_signature(journal, tmp_path):
    files = files_of(export_bytes(journal, tmp_path))
    records = lines_of(files["entries.jsonl"])
    records[3]["payload"]["totals"]["Normal"]["gross"] = 100
    relink(records)
    with pytest.raises(
        VerificationError, match=r"line 4 \(seq 4, receipt AT-REG1-4\): its signature is not valid"
    ):
        verify_export(zip_of(files | {"entries.jsonl": jsonl(records)}))


def relink(records: list[dict], keys=None) -> None:
    """What a forger can do: recompute every hash (and, holding the key, every entry signature)."""
    previous = "0" * 64
    for record in records:
        record["prev_hash"] = previous
        record["entry_hash"] = previous = compute_entry_hash(previous, record["payload"])
        if keys is not None:
            record["signature"] = base64.b64encode(keys.sign(bytes.fromhex(previous))).decode()


@pytest.mark.parametrize(
    ("line", "change", "message"),
    [
        (
            4,
            lambda p: p.update(ts_utc="2026-03-31T09:00:00Z", ts_local="2026-03-31T11:00:00"),
            "earlier than the previous",
        ),
        (4, lambda p: p.update(receipt_counter=5, receipt_number="AT-REG1-5"), "receipt number 5 follows 3"),
        (
            4,
            lambda p: p["totals"]["Normal"].update(gross=1300, net=1100),
            "turnover counter 1750 should be 1850",
        ),
        (4, lambda p: p.update(source_command_id="c1"), "a second record for Mews command c1"),
        (4, lambda p: p.update(bill=dict(p["bill"], id="b1")), "a second record for Mews bill b1"),
        (7, lambda p: p["closing"]["totals"]["Normal"].update(gross=0, net=-200), "Z closing does not match"),
        (7, lambda p: p["closing"].update(period="2026-03-30"), "names 2026-03-30 but covers 2026-03-31"),
        (
            9,
            lambda p: p.update(
                ts_utc="2026-03-31T12:00:00Z", ts_local="2026-03-31T14:00:00", business_day="2026-03-31"
            ),
            "earlier than the previous",
        ),
        (
            6,
            lambda p: p.update(ts_local="2026-03-31T10:05:00"),
            "is not 2026-03-31T10:05:00Z in Europe/Vienna",
        ),
    ],
)
def test_a_forger_holding_the_key_is_still_caught_by_the_rules(journal, tmp_path, line, change, message):
    """Re-signed entries: the semantic checks (time, numbering, turnover, duplicates, closings) still fail."""
    files = files_of(export_bytes(journal, tmp_path))
    records = lines_of(files["entries.jsonl"])
    change(records[line - 1]["payload"])
    relink(records, journal.register.keys)
    with pytest.raises(VerificationError, match=f"entries.jsonl line {line} .*{message}"):
        verify_export(zip_of(files | {"entries.jsonl": jsonl(records)}))


def test_a_missing_daily_closing_is_caught(journal, tmp_path):
    files = files_of(export_bytes(journal, tmp_path))
    records = lines_of(files["entries.jsonl"])
    kept = [r for r in records if r["payload"]["seq"] < 7] + [r for r in records if r["payload"]["seq"] > 8]
    for seq, record in enumerate(kept, start=1):
        record["payload"]["seq"] = seq
    relink(kept, journal.register.keys)
    with pytest.raises(
        VerificationError,
        match=r"line 7 .*no daily closing \(Z\) of 2026-03-31 before this record of 2026-04-01",
    ):
        verify_export(zip_of(files | {"entries.jsonl": jsonl(kept)}))


async def test_generic_polish_register_exports_and_verifies(harness, mk, tmp_path):
    driver = await harness.driver("Kasa", profile_options=mk.generic)
    items = [
        mk.item("i1", "Nocleg", "216.00", "PL-8", "16.00", "PLN"),
        mk.item("i2", "Wino", "61.50", "PL-23", "11.50", "PLN"),
    ]
    paid = [mk.payment("p1", "277.50", "CashPayment", "PLN")]
    notes = await driver.execute(
        mk.job("k1", mk.legacy(mk.bill("pl-1", "F/1", OrderItems=items, PaymentItems=paid)))
    )
    assert notes.startswith("Receipt PL-KASA-1-2 · code ")
    entry = driver.register.entry_for_command("k1")
    assert entry.payload["totals"] == {
        "A": {"gross": 6150, "net": 5000, "tax": 1150},
        "B": {"gross": 21600, "net": 20000, "tax": 1600},
    }
    signed = b64url_decode(entry.profile_code.split(".")[1]).decode()
    assert signed.startswith("_G1_PL-KASA-1_2_SALE_2026-03-10T10:00:00+01:00_PLN_A=61.50;B=216.00_277.50_")
    harness.clock.now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    assert [e.kind for e in await driver.z_report()] == ["Z", "MONTH"]  # generic keeps no YEAR closing
    files = files_of(export_bytes(driver, tmp_path))
    assert "dep-export.json" not in files and "cryptographicMaterialContainer.json" not in files
    report = verify_export(zip_of(files))
    assert (report.profile, report.receipts, report.closings) == ("generic", 3, 2)


@pytest.fixture
def cli_clock(monkeypatch):
    """The CLI's clock, at the journal's last day."""
    from mews_bridge_fiscal_virtual import cli

    monkeypatch.setattr(cli, "_now", lambda: datetime(2026, 4, 1, 9, 0, tzinfo=UTC))


async def test_cli_export_verify_and_z_report(journal, tmp_path, cli_clock, mk, sale_bill):
    runner = CliRunner()
    state_dir = str(journal.register.store.path.parent)
    out = tmp_path / "cli-export.zip"
    result = runner.invoke(fiscal, ["export", "--state-dir", state_dir, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "10 records, 8 receipts" in result.output and "keep it confidential" in result.output
    assert out.stat().st_mode & 0o077 == 0

    result = runner.invoke(fiscal, ["verify", str(out)])
    assert result.exit_code == 0 and "is intact" in result.output

    files = files_of(out.read_bytes())
    records = lines_of(files["entries.jsonl"])
    records[8]["payload"]["totals"]["Normal"]["gross"] += 1
    broken = tmp_path / "broken.zip"
    broken.write_bytes(zip_of(files | {"entries.jsonl": jsonl(records)}).getvalue())
    result = runner.invoke(fiscal, ["verify", str(broken)])
    assert result.exit_code == 1
    assert (
        "entries.jsonl line 9 (seq 9, receipt AT-REG1-8): its contents do not match its entry hash"
        in result.output
    )

    await journal.execute(mk.job("c7", mk.legacy(sale_bill("b7", "7"))))  # the bridge keeps running meanwhile
    result = runner.invoke(fiscal, ["z-report", "--state-dir", state_dir])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Z #3 for 2026-04-01 (seq 12)",
        "  records: 1 SALE",
        "  Erm1: 5,50 (net 5,00, tax 0,50)",
        "  Normal: 12,00 (net 10,00, tax 2,00)",
        "  total: 17,50 EUR",
        "  CashPayment: 17,50",
    ]
    result = runner.invoke(fiscal, ["z-report", "--state-dir", state_dir])
    assert "Nothing to close: no records since Z #3." in result.output


def test_cli_finds_the_device_from_bridge_settings(journal, tmp_path, cli_clock):
    from mews_bridge.cli import main

    bridge_dir = tmp_path / "bridge"
    target = instance_state_dir(bridge_dir, "Fiscal Printer #1")
    assert target == bridge_dir / "instances" / "fiscal-printer-1"
    target.parent.mkdir(parents=True)
    journal.register.store.path.parent.rename(target)
    settings = Settings(
        mews={"client_token": "CT-123456", "access_token": "AT-123456"},
        bridge={"state_dir": bridge_dir},
        devices=[
            device("Fiscal Printer #1", "Fiscal 1", "fiscal_virtual"),
            device("P", "Printer 1", "escpos"),
        ],
    )
    config = write_settings_file(settings, tmp_path / "config.toml")
    result = CliRunner().invoke(main, ["--config", str(config), "fiscal", "z-report"])
    assert result.exit_code == 0 and "Nothing to close" in result.output, result.output
    result = CliRunner().invoke(main, ["--config", str(config), "fiscal", "z-report", "--device", "Other"])
    assert result.exit_code == 2 and "configured: Fiscal Printer #1" in result.output


def test_cli_without_journal_or_settings_explains(tmp_path):
    result = CliRunner().invoke(fiscal, ["z-report", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "There is no fiscal journal in" in result.output
    result = CliRunner().invoke(fiscal, ["export"])
    assert result.exit_code == 2 and "give --state-dir" in result.output


def test_verify_refuses_a_file_that_is_not_an_export(tmp_path):
    missing = tmp_path / "nothing.zip"
    missing.write_bytes(b"not a zip")
    result = CliRunner().invoke(fiscal, ["verify", str(missing)])
    assert result.exit_code == 1 and "not a readable export ZIP" in result.output
