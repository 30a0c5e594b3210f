"""AMI bytes as Asterisk 22 sends them, for tests and ``bench/bench_ami.py``.

The two CDRs were captured from Asterisk 22.10.1 (docs/reference/asterisk-ami.md, section 4); the
responses follow ``main/manager.c`` and ``main/db.c`` byte for byte (the Ping timestamp is an example).
"""

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

CDR_ANSWERED = (
    b"Event: Cdr\r\n"
    b"Privilege: cdr,all\r\n"
    b"AccountCode: 101\r\n"
    b"Source: 101\r\n"
    b"Destination: 00442071234567\r\n"
    b"DestinationContext: outbound\r\n"
    b'CallerID: "Room 101" <101>\r\n'
    b"Channel: PJSIP/101-00000000\r\n"
    b"DestinationChannel: PJSIP/trunk-00000001\r\n"
    b"LastApplication: Dial\r\n"
    b"LastData: PJSIP/00442071234567@trunk,30\r\n"
    b"StartTime: 2026-11-23 09:02:11\r\n"
    b"AnswerTime: 2026-11-23 09:02:15\r\n"
    b"EndTime: 2026-11-23 09:02:20\r\n"
    b"Duration: 9\r\n"
    b"BillableSeconds: 5\r\n"
    b"Disposition: ANSWERED\r\n"
    b"AMAFlags: DOCUMENTATION\r\n"
    b"UniqueID: 1795424531.48\r\n"
    b"UserField: \r\n"
    b"Room: 101\r\n"
    b"GuestLanguage: fr\r\n"
    b"\r\n"
)

CDR_NO_ANSWER = (
    b"Event: Cdr\r\n"
    b"Privilege: cdr,all\r\n"
    b"AccountCode: 101\r\n"
    b"Source: 101\r\n"
    b"Destination: 09981234\r\n"
    b"DestinationContext: outbound\r\n"
    b'CallerID: "John Smith" <101>\r\n'
    b"Channel: Local/009981234@from-rooms-0000000d;2\r\n"
    b"DestinationChannel: Local/09981234@fake-pstn-0000000e;1\r\n"
    b"LastApplication: Dial\r\n"
    b"LastData: Local/09981234@fake-pstn,30\r\n"
    b"StartTime: 2026-11-23 09:04:38\r\n"
    b"AnswerTime: \r\n"
    b"EndTime: 2026-11-23 09:05:08\r\n"
    b"Duration: 30\r\n"
    b"BillableSeconds: 0\r\n"
    b"Disposition: NO ANSWER\r\n"
    b"AMAFlags: DOCUMENTATION\r\n"
    b"UniqueID: 1795424678.48\r\n"
    b"UserField: \r\n"
    b"Room: 101\r\n"
    b"GuestLanguage: de\r\n"
    b"\r\n"
)

CDR_UTF8 = CDR_ANSWERED.replace(b'"Room 101"', '"Jürgen Müller"'.encode())

LOGIN_OK = b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
FULLY_BOOTED = (
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 12\r\nLastReload: 12\r\n"
    b"Status: Fully Booted\r\n\r\n"
)
PING = b"Response: Success\r\nActionID: 2\r\nPing: Pong\r\nTimestamp: 1795424381.112375\r\n\r\n"
DBGET = (
    b"Response: Success\r\nActionID: 3\r\nEventList: start\r\nMessage: Result will follow\r\n\r\n"
    b"Event: DBGetResponse\r\nFamily: hotel/101\r\nKey: outside\r\nVal: 1\r\nActionID: 3\r\n\r\n"
    b"Event: DBGetComplete\r\nActionID: 3\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
)
COMMAND = (
    b"Response: Success\r\nActionID: 4\r\nMessage: Command output follows\r\n"
    # ``database show`` prints "%-50s: %-25s".
    + b"Output: "
    + b"/hotel/101/outside".ljust(50)
    + b": "
    + b"1".ljust(25)
    + b"\r\n"
    + b"Output: 1 results found.\r\n\r\n"
)
SHUTDOWN = b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\nRestart: False\r\n\r\n"
