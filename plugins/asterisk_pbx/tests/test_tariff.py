from decimal import Decimal
from pathlib import Path

import pytest

from mews_bridge_asterisk_pbx.tariff import Tariff, TariffError

SAMPLE = Path(__file__).parents[1] / "docs" / "tariff.sample.toml"


@pytest.fixture(scope="module")
def warsaw() -> Tariff:
    return Tariff.load(SAMPLE)


def tariff(classes: dict, prefixes: dict | None = None, free: dict | None = None, **numbering) -> Tariff:
    return Tariff.from_dict(
        {
            "currency": "EUR",
            "numbering": {"country_code": "49", **numbering},
            "classes": classes,
            "prefixes": prefixes or {"+": "any" if "any" in classes else next(iter(classes))},
            "free": free or {},
        }
    )


# Prices


@pytest.mark.parametrize(
    ("dialled", "seconds", "call_class", "charged", "amount"),
    [
        ("221234567", 192, "local", 240, "1.20"),  # 60 s block + 3 started minutes
        ("221234567", 1, "local", 60, "0.30"),
        ("221234567", 60, "local", 60, "0.30"),
        ("221234567", 61, "local", 120, "0.60"),
        ("123456789", 60, "national", 60, "0.50"),
        ("123456789", 61, "national", 90, "0.75"),  # then 30 s increments
        ("501234567", 5, "mobile", 0, "0.00"),  # free_seconds
        ("501234567", 6, "mobile", 30, "0.40"),
        ("501234567", 31, "mobile", 36, "0.48"),  # then 6 s increments
        ("00442071234567", 192, "international", 240, "7.00"),  # +44 override: 1.00 + 4 * 1.50
        ("0012125550123", 59, "international", 60, "2.00"),
        ("0033123456789", 125, "international", 180, "8.50"),  # default "+": 1.00 + 3 * 2.50
        ("700123456", 30, "premium", 60, "6.00"),
    ],
)
def test_sample_tariff_prices(warsaw, dialled, seconds, call_class, charged, amount):
    rating = warsaw.rate(dialled, seconds)
    assert (rating.call_class, rating.charged_seconds, rating.amount) == (
        call_class,
        charged,
        Decimal(amount),
    )
    assert rating.amount.as_tuple().exponent == -2


def test_international_maximum(warsaw):
    rating = warsaw.rate("0033123456789", 10 * 3600)
    assert rating.amount == Decimal("200.00")


def test_longest_prefix_wins(warsaw):
    assert warsaw.rate("221234567", 60).prefix == "+4822"
    assert warsaw.rate("231234567", 60).prefix == "+48"
    assert warsaw.rate("00442071234567", 60).prefix == "+44"
    assert warsaw.rate("0033123456789", 60).prefix == "+"


def test_setup_fee_and_minimum():
    rates = tariff({"any": {"per_minute": "0.10", "setup_fee": "0.20", "minimum": "0.50"}})
    assert rates.rate("0301234567", 60).amount == Decimal("0.50")  # 0.30 → minimum
    assert rates.rate("0301234567", 240).amount == Decimal("0.60")


def test_first_block_price_overrides_pro_rata():
    rates = tariff(
        {"any": {"per_minute": "0.60", "first_block": 30, "first_block_price": "0.40", "increment": 6}}
    )
    assert rates.rate("0301234567", 30).amount == Decimal("0.40")
    assert rates.rate("0301234567", 37).amount == Decimal("0.52")  # 0.40 + 2 * 0.06


def test_no_first_block_charges_increments_only():
    rates = tariff({"any": {"per_minute": "1.20", "first_block": 0, "increment": 1}})
    assert rates.rate("0301234567", 1).amount == Decimal("0.02")
    assert rates.rate("0301234567", 61).charged_seconds == 61


def test_rounding_is_half_up_to_the_minor_unit():
    rates = tariff({"any": {"per_minute": "0.01", "first_block": 30, "increment": 30}})
    assert rates.rate("0301234567", 30).amount == Decimal("0.01")  # 0.005, not banker's 0.00
    yen = Tariff.from_dict(
        {
            "currency": "JPY",
            "decimal_places": 0,
            "numbering": {"country_code": "81"},
            "classes": {"any": {"per_minute": "12.5", "first_block": 60}},
            "prefixes": {"+": "any"},
        }
    )
    assert yen.rate("0312345678", 60).amount == Decimal("13")


def test_amounts_are_exact_decimals_even_from_toml_floats():
    rates = Tariff.from_toml(
        'currency = "EUR"\n[numbering]\ncountry_code = "49"\n'
        "[classes.any]\nper_minute = 0.1\nincrement = 60\n"
        '[prefixes]\n"+" = "any"\n'
    )
    assert rates.rate("0301234567", 180).amount == Decimal("0.30")


# Free calls


@pytest.mark.parametrize("dialled", ["112", "997", "999"])
def test_emergency_numbers_are_free(warsaw, dialled):
    rating = warsaw.rate(dialled, 300)
    assert (rating.amount, rating.free_reason, rating.chargeable) == (
        Decimal(0),
        "emergency or service number",
        False,
    )


def test_short_numbers_are_internal_and_free(warsaw):
    assert warsaw.rate("101", 300).free_reason == "internal number"
    assert warsaw.rate("7001", 300).free_reason == "internal number"


def test_toll_free_prefixes(warsaw):
    rating = warsaw.rate("800123456", 300)
    assert (rating.number, rating.amount, rating.free_reason) == ("+48800123456", Decimal(0), "toll-free")
    assert warsaw.rate("00800123456789", 300).free_reason == "toll-free"


def test_free_numbers_match_with_or_without_the_outside_line_digit():
    rates = Tariff.from_dict(
        {
            "currency": "EUR",
            "numbering": {"country_code": "49", "strip": "0"},
            "free": {"numbers": ["112"]},
            "classes": {"any": {"per_minute": "1"}},
            "prefixes": {"+": "any"},
        }
    )
    assert rates.rate("0112", 60).free_reason == "emergency or service number"
    assert rates.rate("112", 60).free_reason == "emergency or service number"
    assert rates.rate("0030123456", 60).number == "+4930123456"  # 0 stripped, then trunk 0


# Numbers


@pytest.mark.parametrize(
    ("dialled", "e164"),
    [
        ("02071234567", "+442071234567"),
        ("0044 20 7123 4567", "+442071234567"),
        ("+44 (20) 7123-4567", "+442071234567"),
        ("71234567", "+442071234567"),  # local: area code added
        ("07700900123", "+447700900123"),
        ("0033123456789", "+33123456789"),
    ],
)
def test_uk_numbering(dialled, e164):
    london = tariff({"any": {"per_minute": "1"}}, country_code="44", area_code="20", local_number_length=8)
    assert london.normalise(dialled) == e164


@pytest.mark.parametrize(
    ("dialled", "e164"),
    [
        ("5550123", "+12125550123"),
        ("2125550123", "+12125550123"),
        ("12125550123", "+12125550123"),
        ("011442071234567", "+442071234567"),
        ("9011442071234567", "+442071234567"),  # outside-line 9 left in by the dialplan
    ],
)
def test_north_american_numbering(dialled, e164):
    new_york = tariff(
        {"any": {"per_minute": "1"}},
        country_code="1",
        area_code="212",
        local_number_length=7,
        international_prefix="011",
        trunk_prefix="1",
        strip="9",
    )
    assert new_york.normalise(dialled) == e164


@pytest.mark.parametrize("dialled", ["*52", "12#4", "abc", "00"])
def test_what_is_not_a_phone_number(warsaw, dialled):
    with pytest.raises(TariffError, match="not a phone number"):
        warsaw.normalise(dialled)


@pytest.mark.parametrize(
    ("number", "shown", "kind"),
    [
        ("+43316123456", "+43 316 123456", "fixed"),  # Graz: a three-digit area code
        ("+436641234567", "+43 664 1234567", "mobile"),
        ("+43900123456", "+43 900 123456", "premium"),
        ("+48221234567", "+48 22 123 45 67", "fixed"),
        ("+48501234567", "+48 501 234 567", "mobile"),
        ("+48800123456", "+48 800 123 456", "toll-free"),
        ("+442071234567", "+44 20 7123 4567", "fixed"),
        ("+447911123456", "+44 7911 123456", "mobile"),
        ("+12125550123", "+1 212-555-0123", "fixed"),
        ("+4930123456", "+49 30 123456", "fixed"),
        ("+4420", "+44 20", "unknown"),
    ],
)
def test_numbers_as_their_country_writes_them_and_their_type(number, shown, kind):
    assert Tariff.display(number) == shown
    assert Tariff.number_type(number) == kind


def test_a_tariff_prices_by_number_type_as_well_as_by_prefix():
    rates = tariff(
        {"fixed": {"per_minute": "0.10"}, "mobile": {"per_minute": "0.50"}, "abroad": {"per_minute": "2"}},
        prefixes={
            "+": "abroad",
            "+43": "fixed",
            "+43 mobile": "mobile",
            "+43 premium": "abroad",
            "+43699": "fixed",
        },
        country_code="43",
        area_code="316",
        local_number_length=7,
    )
    assert rates.rate("123456", 60).call_class == "fixed"  # local Graz number
    assert rates.rate("06641234567", 60).call_class == "mobile"
    assert rates.rate("0900123456", 60).call_class == "abroad"
    assert rates.rate("069912345678", 60).call_class == "fixed"  # a longer plain prefix wins
    assert rates.rate("00447911123456", 60).call_class == "abroad"  # a mobile, but not in Austria
    rating = rates.rate("0316123456", 60)
    assert (rating.display, rating.number_type) == ("+43 316 123456", "fixed")
    free = tariff({"x": {"per_minute": "1"}}, free={"types": ["toll-free"]}, country_code="48").rate(
        "800123456", 60
    )
    assert (free.amount, free.free_reason) == (Decimal(0), "toll-free")
    with pytest.raises(TariffError, match="'cell' is not a number type"):
        tariff({"x": {"per_minute": "1"}}, prefixes={"+43 cell": "x"})


def test_rating_carries_the_display_form(warsaw):
    rating = warsaw.rate("221234567", 192)
    assert (rating.number, rating.display) == ("+48221234567", "+48 22 123 45 67")


# Invalid files


def test_unmatched_number_without_catch_all():
    rates = tariff({"any": {"per_minute": "1"}}, prefixes={"+49": "any"})
    with pytest.raises(TariffError, match=r"No tariff prefix matches \+33123456789"):
        rates.rate("0033123456789", 60)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prefixes": {"+48": "nowhere"}}, "names class 'nowhere'"),
        ({"prefixes": {"48": "any"}}, "not an E.164 prefix"),
        ({"classes": {"any": {"per_minut": "1"}}}, "classes.any.per_minut: Extra inputs are not permitted"),
        ({"classes": {"any": {"per_minute": "-1"}}}, "classes.any.per_minute"),
        ({"classes": {"any": {"per_minute": "1", "increment": 0}}}, "classes.any.increment"),
        ({"currency": "euro"}, "currency"),
        ({"free": {"prefixes": ["0800"]}}, "not an E.164 prefix"),
    ],
)
def test_invalid_tariffs_say_what_is_wrong(change, message):
    data = {
        "currency": "EUR",
        "numbering": {"country_code": "49"},
        "classes": {"any": {"per_minute": "1"}},
        "prefixes": {"+": "any"},
        **change,
    }
    with pytest.raises(TariffError, match=message):
        Tariff.from_dict(data)


def test_load_reports_the_path(tmp_path):
    broken = tmp_path / "tariff.toml"
    broken.write_text("currency = [", encoding="utf-8")
    with pytest.raises(TariffError, match=r"tariff\.toml: Invalid tariff: not valid TOML"):
        Tariff.load(broken)
    with pytest.raises(TariffError, match="Cannot read the tariff file"):
        Tariff.load(tmp_path / "missing.toml")


def test_classes_of_the_sample(warsaw):
    assert warsaw.classes == {"local", "national", "mobile", "international", "premium"}
    assert warsaw.currency == "PLN"


def test_the_readme_example_is_a_valid_tariff():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = [block.split("```")[0] for block in readme.split("```toml\n")[1:]]
    example = next(block for block in blocks if "[numbering]" in block)
    rates = Tariff.from_toml(example)
    assert rates.rate("0044 20 7123 4567", 60).amount == Decimal("2.50")  # 1.00 + 1.50
    assert rates.rate("221234567", 3).amount == Decimal("0.00")  # free_seconds
    assert rates.rate("221234567", 61).amount == Decimal("0.75")  # 0.10 + 0.40 + 0.25
