import pytest

from mews_bridge_asterisk_pbx.actions import AmiClient
from mews_bridge_asterisk_pbx.rooms import (
    AstDbWrite,
    Guest,
    RoomMap,
    RoomMapError,
    asterisk_language,
    check_in,
    check_out,
    guest_name,
    resync,
)
from mews_bridge_mocks.ami.fixtures import SECRET, USERNAME

# Room map


def test_explicit_map():
    rooms = RoomMap.from_option({"201": "101", "202": "Suite 1"})
    assert rooms.resource_for("202") == "Suite 1"
    assert rooms.extension_for("Suite 1") == "202"
    assert rooms.resource_for("203") is None and rooms.extension_for("102") is None
    assert rooms.is_room("201") and not rooms.is_room("101")


def test_identity_pattern():
    rooms = RoomMap.from_option("{room}")
    assert rooms.resource_for("101") == "101"
    assert rooms.extension_for("101A") == "101A"
    assert rooms.extension_for("Suite 1") is None  # no dialable extension


def test_prefix_pattern():
    rooms = RoomMap.from_option("2{room}")
    assert rooms.resource_for("2101") == "101"
    assert rooms.extension_for("101") == "2101"
    assert rooms.resource_for("3101") is None
    assert rooms.resource_for("2") is None


def test_patterns_accept_only_the_propertys_rooms():
    rooms = RoomMap.from_option("{room}")
    assert rooms.is_room("trunk")  # a pattern alone takes anything
    rooms.set_resources(["101", "102"])
    assert rooms.is_room("101") and not rooms.is_room("trunk") and not rooms.is_room("221234567")
    assert rooms.extension_for("103") is None
    explicit = RoomMap.from_option({"201": "101", "299": "Old room"}, resources=["101"])
    assert explicit.resource_for("299") is None and explicit.resource_for("201") == "101"


def test_resource_pattern():
    rooms = RoomMap.from_option({"extension": "{room}", "resource": "Room {room}"})
    assert rooms.resource_for("101") == "Room 101"
    assert rooms.extension_for("Room 101") == "101"
    assert rooms.extension_for("Suite 1") is None


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("2", "must contain {room} once"),
        ("{room}{room}", "must contain {room} once"),
        ({"extension": "2{room}", "floor": "1"}, "only 'extension' and 'resource'"),
        ({"10 1": "101"}, "not a phone extension"),
        ({"101": " "}, "empty room name"),
        ({"101": "101", "201": "101"}, "room '101' has two extensions"),
    ],
)
def test_invalid_room_options(option, message):
    with pytest.raises(RoomMapError, match=message):
        RoomMap.from_option(option)


# AstDB writes


def test_check_in_and_out():
    assert check_in("101", Guest("Jürgen Müller", "de")) == [
        AstDbWrite("hotel/101", "outside", "1"),
        AstDbWrite("hotel/101", "name", "Jürgen Müller"),
        AstDbWrite("hotel/101", "language", "de"),
        AstDbWrite("hotel/101", "dnd", None),
    ]
    assert check_out("101", family="pms") == [
        AstDbWrite("pms/101", "outside", "0"),
        AstDbWrite("pms/101", "name", None),
        AstDbWrite("pms/101", "language", None),
        AstDbWrite("pms/101", "dnd", None),
    ]


def test_resync_writes_only_differences_and_keeps_guest_dnd():
    current = {
        "/hotel/101/outside": "1",
        "/hotel/101/name": "Old Guest",
        "/hotel/101/dnd": "1",
        "/hotel/102/outside": "1",
        "/hotel/102/name": "Gone Guest",
        "/hotel/102/dnd": "1",
        "/hotel/103/outside": "0",
        "/hotel/999/outside": "1",
    }
    occupancy = {"101": Guest("New Guest", "fr"), "102": None, "103": None}
    assert resync(current, occupancy) == [
        AstDbWrite("hotel/101", "name", "New Guest"),
        AstDbWrite("hotel/101", "language", "fr"),
        AstDbWrite("hotel/102", "outside", "0"),
        AstDbWrite("hotel/102", "name", None),
        AstDbWrite("hotel/102", "dnd", None),
    ]


def test_resync_of_a_synced_pbx_is_empty():
    occupancy = {"101": Guest("Ann Lee"), "102": None}
    current = {w.path: w.value for w in check_in("101", Guest("Ann Lee")) + check_out("102") if w.value}
    assert resync(current, occupancy) == []


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Jürgen Müller", "Jürgen Müller"),
        ('John "Johnny" Smith', "John Johnny Smith"),
        ("Evil\r\nAction: Originate", "Evil Action: Originate"),
        ("  Ann\t\tLee  ", "Ann Lee"),
        ("<script>", "script"),
        ("A" * 60, "A" * 40),
    ],
)
def test_guest_names_are_safe_for_caller_id(raw, clean):
    assert guest_name(raw) == clean


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("de-DE", "de"),
        ("en-US", "en"),
        ("pt_BR", "pt"),
        ("FR", "fr"),
        (None, None),
        ("", None),
        ("123", None),
    ],
)
def test_asterisk_language(code, language):
    assert asterisk_language(code) == language


@pytest.mark.usefixtures("verify_no_lingering_tasks", "verify_cleanup")
async def test_check_in_and_out_through_the_pbx(ami_simulator):
    """Writes applied over AMI land in AstDB as the sample dialplan expects."""
    ami = AmiClient("127.0.0.1", ami_simulator.port, username=USERNAME, secret=SECRET)
    await ami.connect()

    async def apply(writes: list[AstDbWrite]) -> None:
        for write in writes:
            if write.value is None:
                await ami.db_del(write.family, write.key)
            else:
                await ami.db_put(write.family, write.key, write.value)

    ami_simulator.astdb["/hotel/101/dnd"] = "1"  # left over from the previous guest
    await apply(check_in("101", Guest('Jürgen "J" Müller', asterisk_language("de-DE"))))
    assert ami_simulator.astdb == {
        "/hotel/101/outside": "1",
        "/hotel/101/name": "Jürgen J Müller",
        "/hotel/101/language": "de",
    }
    await apply(check_out("101"))
    assert ami_simulator.astdb == {"/hotel/101/outside": "0"}
    await ami.close()
