"""An incremental ESC/POS byte-stream decoder, with no I/O.

It parses bytes the way a printer does, from the Epson ESC/POS command reference, and shares no code
with the driver's encoder, so a wrong byte from the encoder shows up here as a wrong command, a
wrong image or an ``unknown`` entry. Feed it any slices of the stream; a command split across two
slices is held until it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NUL, HT, LF, FF, CR = 0x00, 0x09, 0x0A, 0x0C, 0x0D
DLE, ESC, FS, GS = 0x10, 0x1B, 0x1C, 0x1D

# Parameter bytes after ``ESC c`` for fixed-length commands, and what they set.
_ESC_FIXED: dict[int, tuple[int, str]] = {
    ord(" "): (1, "right-side character spacing"),
    ord("!"): (1, "print mode"),
    ord("$"): (2, "absolute print position"),
    ord("%"): (1, "user-defined characters on/off"),
    ord("-"): (1, "underline"),
    ord("2"): (0, "default line spacing"),
    ord("3"): (1, "line spacing"),
    ord("="): (1, "select peripheral"),
    ord("?"): (1, "cancel user-defined character"),
    ord("@"): (0, "initialise"),
    ord("E"): (1, "emphasised"),
    ord("G"): (1, "double-strike"),
    ord("J"): (1, "print and feed dots"),
    ord("L"): (0, "page mode"),
    ord("M"): (1, "character font"),
    ord("R"): (1, "international character set"),
    ord("S"): (0, "standard mode"),
    ord("T"): (1, "print direction in page mode"),
    ord("U"): (1, "unidirectional printing"),
    ord("V"): (1, "90 degree rotation"),
    ord("W"): (8, "page mode print area"),
    ord("\\"): (2, "relative print position"),
    ord("a"): (1, "justification"),
    ord("c"): (2, "panel and paper sensors"),
    ord("d"): (1, "print and feed lines"),
    ord("e"): (1, "print and reverse feed lines"),
    ord("i"): (0, "partial cut (obsolete)"),
    ord("m"): (0, "partial cut (obsolete)"),
    ord("p"): (3, "cash drawer pulse"),
    ord("r"): (1, "print colour"),
    ord("t"): (1, "character code table"),
    ord("{"): (1, "upside-down printing"),
}
_GS_FIXED: dict[int, tuple[int, str]] = {
    ord("!"): (1, "character size"),
    ord("$"): (2, "absolute vertical position in page mode"),
    ord("/"): (1, "print downloaded bit image"),
    ord(":"): (0, "macro definition"),
    ord("B"): (1, "reverse (white on black)"),
    ord("H"): (1, "barcode text position"),
    ord("I"): (1, "transmit printer id"),
    ord("L"): (2, "left margin"),
    ord("P"): (2, "motion units"),
    ord("W"): (2, "print area width"),
    ord("\\"): (2, "relative vertical position in page mode"),
    ord("^"): (3, "execute macro"),
    ord("a"): (1, "automatic status back"),
    ord("b"): (1, "smoothing"),
    ord("f"): (1, "barcode text font"),
    ord("h"): (1, "barcode height"),
    ord("r"): (1, "transmit status"),
    ord("w"): (1, "barcode width"),
}
_FS_FIXED: dict[int, tuple[int, str]] = {
    ord("!"): (1, "kanji print mode"),
    ord("&"): (0, "kanji mode on"),
    ord("-"): (1, "kanji underline"),
    ord("."): (0, "kanji mode off"),
    ord("C"): (1, "kanji code system"),
    ord("S"): (2, "kanji spacing"),
    ord("W"): (1, "kanji quadruple size"),
    ord("p"): (2, "print NV bit image"),
}
_DC4_PARAMS = {1: 2, 2: 2, 7: 1, 8: 7}


@dataclass(frozen=True)
class Command:
    """One decoded command. ``kind`` is what the renderer acts on; ``args`` its parameters."""

    kind: str
    raw: bytes
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the command log."""
        if self.kind == "text":
            return f"TEXT {self.args['data']!r}"
        if self.kind == "nul":
            return f"NUL x{self.args['count']}"
        if self.kind in ("raster_image", "graphics_store", "column_image"):
            details = " ".join(
                f"{key}={value}" for key, value in self.args.items() if key not in ("name", "data")
            )
            return f"{self.args['name']} {details} ({len(self.args['data'])} data bytes)"
        head = self.args.get("name") or self.kind
        params = " ".join(str(byte) for byte in self.args.get("params", b""))
        meaning = self.args.get("meaning", "")
        return " ".join(part for part in (head, params, f"- {meaning}" if meaning else "") if part)


_CONTROL_NAMES = {0x04: "EOT", 0x05: "ENQ", 0x14: "DC4"}


def _name(raw: bytes) -> str:
    prefix = {ESC: "ESC", GS: "GS", FS: "FS", DLE: "DLE"}[raw[0]]
    second = raw[1]
    if second in _CONTROL_NAMES:
        return f"{prefix} {_CONTROL_NAMES[second]}"
    return f"{prefix} {chr(second) if 0x20 < second < 0x7F else f'0x{second:02x}'}"


class EscposDecoder:
    """Turns bytes into :class:`Command` objects, keeping incomplete commands for the next feed."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back as the start of an incomplete command."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Command]:
        self._buffer += data
        commands: list[Command] = []
        position = 0
        while position < len(self._buffer):
            parsed = self._parse(position)
            if parsed is None:
                break
            command, position = parsed
            commands.append(command)
        del self._buffer[:position]
        return commands

    def _parse(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        byte = buffer[at]
        if byte >= 0x20:
            end = at
            while end < len(buffer) and buffer[end] >= 0x20:
                end += 1
            return Command("text", bytes(buffer[at:end]), {"data": bytes(buffer[at:end])}), end
        if byte == NUL:
            end = at
            while end < len(buffer) and buffer[end] == NUL:
                end += 1
            return Command("nul", bytes(end - at), {"count": end - at}), end
        if byte in (LF, CR, HT, FF):
            names = {LF: "LF", CR: "CR", HT: "HT", FF: "FF"}
            return Command(names[byte].lower(), bytes([byte]), {"name": names[byte]}), at + 1
        if byte in (ESC, GS, FS, DLE):
            if at + 1 >= len(buffer):
                return None
            parser = {ESC: self._esc, GS: self._gs, FS: self._fs, DLE: self._dle}[byte]
            return parser(at)
        return Command("ignored", bytes([byte]), {"name": f"0x{byte:02x}", "meaning": "control code"}), at + 1

    def _fixed(self, at: int, count: int, meaning: str, kind: str = "setting") -> tuple[Command, int] | None:
        end = at + 2 + count
        if end > len(self._buffer):
            return None
        raw = bytes(self._buffer[at:end])
        return Command(kind, raw, {"name": _name(raw), "params": raw[2:], "meaning": meaning}), end

    def _unknown(self, at: int) -> tuple[Command, int]:
        raw = bytes(self._buffer[at : at + 2])
        return Command("unknown", raw, {"name": _name(raw), "meaning": "unknown command"}), at + 2

    def _esc(self, at: int) -> tuple[Command, int] | None:
        code = self._buffer[at + 1]
        if code == ord("*"):
            return self._column_image(at)
        if code == ord("D"):  # tab positions, NUL-terminated
            end = self._buffer.find(b"\x00", at + 2)
            if end < 0:
                return None
            return self._fixed(at, end + 1 - at - 2, "horizontal tab positions")
        if code not in _ESC_FIXED:
            return self._unknown(at)
        count, meaning = _ESC_FIXED[code]
        kind = {
            ord("@"): "init",
            ord("d"): "feed_lines",
            ord("J"): "feed_dots",
            ord("2"): "line_spacing",
            ord("3"): "line_spacing",
            ord("t"): "code_page",
            ord("a"): "align",
            ord("!"): "print_mode",
            ord("E"): "bold",
            ord("-"): "underline",
            ord("M"): "font",
            ord("i"): "cut",
            ord("m"): "cut",
        }.get(code, "setting")
        return self._fixed(at, count, meaning, kind)

    def _column_image(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        if at + 5 > len(buffer):
            return None
        mode = buffer[at + 2]
        width = buffer[at + 3] | buffer[at + 4] << 8
        column_bytes = 3 if mode in (32, 33) else 1
        end = at + 5 + width * column_bytes
        if end > len(buffer):
            return None
        args = {"name": "ESC *", "m": mode, "width": width, "data": bytes(buffer[at + 5 : end])}
        return Command("column_image", bytes(buffer[at:end]), args), end

    def _gs(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        code = buffer[at + 1]
        if code == ord("V"):
            if at + 3 > len(buffer):
                return None
            count = 1 if buffer[at + 2] in (65, 66, 97, 98, 103, 104) else 0
            return self._fixed(at, 1 + count, "cut", "cut")
        if code == ord("v"):
            return self._raster_image(at)
        if code == ord("("):
            return self._gs_paren(at)
        if code == ord("8"):
            return self._gs_8(at)
        if code == ord("k"):
            return self._barcode(at)
        if code == ord("*"):  # define downloaded bit image: x, y, then x*y*8 bytes
            if at + 4 > len(buffer):
                return None
            return self._fixed(at, 2 + buffer[at + 2] * buffer[at + 3] * 8, "define downloaded bit image")
        if code not in _GS_FIXED:
            return self._unknown(at)
        count, meaning = _GS_FIXED[code]
        return self._fixed(at, count, meaning, "char_size" if code == ord("!") else "setting")

    def _raster_image(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        if at + 8 > len(buffer):
            return None
        if buffer[at + 2] != ord("0"):
            return self._unknown(at)
        mode = buffer[at + 3]
        width_bytes = buffer[at + 4] | buffer[at + 5] << 8
        height = buffer[at + 6] | buffer[at + 7] << 8
        end = at + 8 + width_bytes * height
        if end > len(buffer):
            return None
        args = {"name": "GS v 0", "m": mode, "width_bytes": width_bytes, "height": height}
        args["data"] = bytes(buffer[at + 8 : end])
        return Command("raster_image", bytes(buffer[at:end]), args), end

    def _gs_paren(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        if at + 5 > len(buffer):
            return None
        function = chr(buffer[at + 2])
        size = buffer[at + 3] | buffer[at + 4] << 8
        end = at + 5 + size
        if end > len(buffer):
            return None
        body = bytes(buffer[at + 5 : end])
        if function == "L":
            return self._graphics("GS ( L", bytes(buffer[at:end]), body), end
        raw = bytes(buffer[at:end])
        meaning = {"k": "2D code (QR, PDF417)", "A": "test print", "E": "user setup", "H": "response request"}
        args = {
            "name": f"GS ( {function}",
            "params": body,
            "meaning": meaning.get(function, "extended command"),
        }
        return Command("setting", raw, args), end

    def _gs_8(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        if at + 7 > len(buffer):
            return None
        if buffer[at + 2] != ord("L"):
            return self._unknown(at)
        size = int.from_bytes(buffer[at + 3 : at + 7], "little")
        end = at + 7 + size
        if end > len(buffer):
            return None
        return self._graphics("GS 8 L", bytes(buffer[at:end]), bytes(buffer[at + 7 : end])), end

    @staticmethod
    def _graphics(name: str, raw: bytes, body: bytes) -> Command:
        if len(body) < 2:
            return Command("unknown", raw, {"name": name, "meaning": "graphics command too short"})
        function = body[1]
        if function in (50, 2):
            return Command("graphics_print", raw, {"name": name, "meaning": "print buffered graphics"})
        if function in (112, 0x70) and len(body) >= 10:
            width = body[6] | body[7] << 8
            height = body[8] | body[9] << 8
            args = {"name": name, "a": body[2], "bx": body[3], "by": body[4], "c": body[5]}
            args.update(width=width, height=height, data=body[10:])
            return Command("graphics_store", raw, args)
        return Command(
            "setting", raw, {"name": name, "params": body[:2], "meaning": f"graphics function {function}"}
        )

    def _barcode(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        if at + 3 > len(buffer):
            return None
        system = buffer[at + 2]
        if system <= 6:  # function A: NUL-terminated data
            end = buffer.find(b"\x00", at + 3)
            if end < 0:
                return None
            end += 1
        else:
            if at + 4 > len(buffer):
                return None
            end = at + 4 + buffer[at + 3]
            if end > len(buffer):
                return None
        raw = bytes(buffer[at:end])
        return Command("barcode", raw, {"name": "GS k", "params": raw[2:3], "meaning": "barcode"}), end

    def _fs(self, at: int) -> tuple[Command, int] | None:
        code = self._buffer[at + 1]
        if code not in _FS_FIXED:
            return self._unknown(at)
        count, meaning = _FS_FIXED[code]
        return self._fixed(at, count, meaning)

    def _dle(self, at: int) -> tuple[Command, int] | None:
        buffer = self._buffer
        code = buffer[at + 1]
        if code == 0x04:  # DLE EOT n [a]
            if at + 3 > len(buffer):
                return None
            extra = 1 if buffer[at + 2] in (7, 8) else 0
            return self._fixed(at, 1 + extra, "real-time status request", "status_request")
        if code == 0x05:
            return self._fixed(at, 1, "real-time request (recover, clear)", "realtime")
        if code == 0x14:
            if at + 3 > len(buffer):
                return None
            return self._fixed(at, 1 + _DC4_PARAMS.get(buffer[at + 2], 0), "real-time command", "realtime")
        return self._unknown(at)
