"""What a printer's and a job's IPP state mean for the front desk, in plain words. No I/O.

``printer-state-reasons`` keywords (RFC 8011 section 5.4.12, PWG 5100.9) may carry a severity suffix:
``-error`` (or none), ``-warning`` or ``-report``. Printers use it loosely (CUPS' ippeveprinter writes
``-report`` for every reason while idle), so a known fault stops a command before it is sent whatever
its suffix, except a tray's: an empty or missing tray reported as a warning or report may be the
by-pass tray while the main one is full. Such a job is sent, and ends only if it then waits on paper
(the printer says ``media-needed``, or the job stops).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import IppJobState, IppPrinterState, IppStatus, values

FAULTS = {  # keyword -> (what happened, what to do)
    "media-empty": ("Paper out on {name}", "Load paper and print again."),
    "media-needed": ("Paper out on {name}", "Load paper and print again."),
    "media-jam": ("Paper jam in {name}", "Clear the jam and print again."),
    "door-open": ("A door is open on {name}", "Close it and print again."),
    "cover-open": ("A cover is open on {name}", "Close it and print again."),
    "input-tray-missing": ("A paper tray is missing on {name}", "Put it back and print again."),
    "toner-empty": ("{name} is out of toner", "Replace the toner cartridge and print again."),
    "marker-supply-empty": ("{name} is out of ink or toner", "Replace the cartridge and print again."),
    "marker-waste-full": ("The waste toner box of {name} is full", "Replace it and print again."),
    "output-area-full": ("The output tray of {name} is full", "Empty it and print again."),
    "offline": ("{name} is offline", "Switch it on or put it online, then print again."),
    "shutdown": ("{name} is switched off", "Switch it on and print again."),
    "paused": ("{name} is paused", "Resume it on the printer or its print server, then print again."),
    "spool-area-full": (
        "{name} has no room for more jobs",
        "Wait until it has printed its queue, then print again.",
    ),
}
WARNINGS = {
    "toner-low": "Toner low on {name}: replace the cartridge soon.",
    "marker-supply-low": "Ink or toner low on {name}: replace the cartridge soon.",
    "media-low": "Paper low on {name}: refill it soon.",
    "marker-waste-almost-full": "The waste toner box of {name} is almost full.",
}
JOB_REASONS = {  # job-state-reasons worth telling the front desk when a job did not complete
    "job-canceled-at-device": "it was cancelled on the printer",
    "job-canceled-by-operator": "an operator cancelled it",
    "job-canceled-by-user": "it was cancelled",
    "aborted-by-system": "the printer gave it up",
    "document-format-error": "the printer could not read the document",
    "document-unprintable-error": "the printer could not print the document",
    "unsupported-document-format": "the printer does not take the document's format",
    "document-password-error": "the document is protected by a password",
    "job-password-wait": "the printer waits for a password",
    "printer-stopped": "the printer stopped",
    "resources-are-not-ready": "the printer is missing paper or supplies it needs",
}
TRAY_REASONS = {"media-empty", "media-needed", "input-tray-missing"}
JOB_DONE = {IppJobState.COMPLETED, IppJobState.CANCELED, IppJobState.ABORTED}


def split_reason(keyword: str) -> tuple[str, str]:
    """``media-empty-warning`` → (``media-empty``, ``warning``); no suffix is an error."""
    for severity in ("error", "warning", "report"):
        if keyword.endswith(f"-{severity}"):
            return keyword[: -len(severity) - 1], severity
    return keyword, "error"


@dataclass
class PrinterState:
    """The answer to Get-Printer-Attributes, read for printing."""

    state: int | None
    reasons: list[str]
    message: str
    accepting: bool
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, attributes: dict[str, Any]) -> PrinterState:
        state = attributes.get("printer-state")
        return cls(
            state=int(state) if isinstance(state, int) else None,
            reasons=[
                reason
                for reason in values(attributes, "printer-state-reasons")
                if reason and reason != "none"
            ],
            message=str(attributes.get("printer-state-message") or ""),
            accepting=attributes.get("printer-is-accepting-jobs", True) is not False,
            attributes=attributes,
        )

    @property
    def stopped(self) -> bool:
        return self.state == IppPrinterState.STOPPED

    def faults(self, *, trays: bool = False) -> list[str]:
        """Notes for each known fault, in the printer's order, once each; a tray's only as an error,
        unless ``trays``."""
        notes: list[str] = []
        for keyword in self.reasons:
            reason, severity = split_reason(keyword)
            if reason in FAULTS and (trays or severity == "error" or reason not in TRAY_REASONS):
                problem, advice = FAULTS[reason]
                note = f"{problem}. {advice}"
                if note not in notes:
                    notes.append(note)
        return notes

    def unknown_errors(self) -> list[str]:
        """Reasons the printer calls errors that this module has no words for (support wants them)."""
        return [
            reason
            for reason, severity in map(split_reason, self.reasons)
            if severity == "error" and reason not in FAULTS and reason not in WARNINGS and reason != "other"
        ]

    def warnings(self, name: str) -> list[str]:
        found: list[str] = []
        for reason, _ in map(split_reason, self.reasons):
            note = WARNINGS.get(reason)
            if note and note.format(name=name) not in found:
                found.append(note.format(name=name))
        return found

    def stop_notes(self, name: str) -> str | None:
        """Why a command must not be sent now, or None when the printer can take it."""
        faults = [note.format(name=name) for note in self.faults()]
        if self.stopped:
            detail = " ".join(faults) or _stopped_advice(name, self.unknown_errors())
            return f"{name} is stopped. {detail}"
        if faults:
            return " ".join(faults)
        if not self.accepting:
            return f"{name} is not accepting jobs. Enable it on the printer or its print server, then print again."
        return None

    def waiting_notes(self, name: str) -> str | None:
        """Why a job that stopped moving waits, from faults of any severity."""
        faults = self.faults(trays=True)
        if faults:
            return " ".join(note.format(name=name) for note in faults)
        if self.stopped:
            return f"{name} is stopped. " + _stopped_advice(name, self.unknown_errors())
        return None

    @property
    def media_waiting(self) -> bool:
        return any(split_reason(keyword)[0] == "media-needed" for keyword in self.reasons)


def _stopped_advice(name: str, unknown: list[str]) -> str:
    code = f" (it reports {', '.join(unknown)})" if unknown else ""
    return f"Check {name} and its print server{code}, then print again."


def job_reason_words(reasons: list[str]) -> str:
    words = [JOB_REASONS[reason] for reason in reasons if reason in JOB_REASONS]
    return "; ".join(dict.fromkeys(words))


NOT_ACCEPTING = {IppStatus.ERROR_NOT_ACCEPTING_JOBS, IppStatus.ERROR_BUSY, IppStatus.ERROR_TEMPORARY}
REFUSED_DOCUMENT = {
    IppStatus.ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
    IppStatus.ERROR_DOCUMENT_FORMAT_ERROR,
    IppStatus.ERROR_DOCUMENT_UNPRINTABLE,
    IppStatus.ERROR_ATTRIBUTES_OR_VALUES,
    IppStatus.ERROR_REQUEST_ENTITY,
}
