"""The AMI simulator's room phones over a real socket: codes handed over as the sample dialplan does,
and async Originates answered or not per channel."""

from __future__ import annotations

from mews_bridge.testing import wait_for
from mews_bridge_asterisk_pbx.actions import AmiClient
from mews_bridge_asterisk_pbx.codec import Message
from mews_bridge_mocks.ami import AmiSimulator


async def test_a_dialled_code_arrives_as_a_user_event_and_waits_for_the_answer_in_astdb():
    async with AmiSimulator(secret="s", auth_failure_delay=0) as sim:
        client = AmiClient("127.0.0.1", sim.port, username="mewsbridge", secret="s", events="user")
        events: list[Message] = []

        async def answer(event: Message) -> None:
            events.append(event)
            await client.db_put("hotel/reply", event["Request"], "ok room 101 Clean")

        client.subscribe(answer, "UserEvent")
        await client.connect()
        try:
            assert await sim.dial_code("101", "*52*4711*1") == "ok room 101 Clean"
            [event] = events
            assert (event["UserEvent"], event["Room"], event["Code"]) == ("HotelCode", "101", "*52*4711*1")
            assert not any(key.startswith("/hotel/reply/") for key in sim.astdb)  # read and deleted
        finally:
            await client.close()
        assert await sim.dial_code("102", "*56", wait=0.1) is None  # nobody answers
    assert sim.prompts == [("101", "confirmation"), ("102", "error")]


async def test_async_originates_are_answered_or_not_per_channel():
    async with AmiSimulator(secret="s", auth_failure_delay=0) as sim:
        sim.originate_outcomes.update({"PJSIP/102": "no answer", "PJSIP/103": "busy"})
        client = AmiClient("127.0.0.1", sim.port, username="mewsbridge", secret="s", events="call")
        responses: list[Message] = []
        client.subscribe(responses.append, "OriginateResponse")
        await client.connect()
        try:
            for room in ("101", "102", "103"):
                reply = await client.action(
                    "Originate",
                    {
                        "Channel": f"PJSIP/{room}",
                        "Context": "hotel-wakeup",
                        "Exten": "s",
                        "Priority": "1",
                        "Async": "true",
                        "Variable": [f"WAKEUP_ID=w{room}", "CHANNEL(language)=de"],
                    },
                    action_id=f"w{room}",
                )
                assert reply.message == "Originate successfully queued"
            await wait_for(lambda: len(responses) == 3, 5, "three OriginateResponses")
        finally:
            await client.close()
    outcomes = {r.action_id: (r["Response"], r["Reason"]) for r in responses}
    assert outcomes == {"w101": ("Success", "4"), "w102": ("Failure", "3"), "w103": ("Failure", "5")}
    # What [hotel-wakeup] writes once the guest picks up; nothing for the calls nobody took.
    assert {k: v for k, v in sim.astdb.items() if "/wakeup/" in k} == {"/hotel/wakeup/w101": "answered"}
    assert len(sim.originate_responses) == 3
