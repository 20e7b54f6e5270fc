"""The console as app/'s Reporter: lines for people on stdout (stderr under --json, where stdout carries the json),
warnings on stderr, json on stdout. The streams are looked up at each line: the scrubbed ones while a command runs."""

from __future__ import annotations

from dataclasses import dataclass
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ..console import ConsoleReporter


@dataclass(frozen=True)
class ConsoleLines:
    json_output: bool = False

    @property
    def human(self) -> TextIO:
        return sys.stderr if self.json_output else sys.stdout

    def say(self, line: str = "") -> None:
        print(line, file=self.human)

    def warn(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def data(self, text: str) -> None:
        print(text, flush=True)

    def progress(self) -> "ConsoleReporter":
        from ..console import ConsoleReporter

        return ConsoleReporter(self.human)
