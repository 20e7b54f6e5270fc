"""What an answer must contain (a prompt's `expect`), judged in linear time whatever the pattern and the answer.

A regular expression comes from a prompt file and meets an answer a provider wrote: both untrusted. Python's `re`
backtracks ("/(a+)+$/" against a long run of a's took minutes, holding the GIL, deaf to SIGTERM), so patterns run in
RE2 (google-re2), which never does; what RE2 cannot run (backreferences, lookaround) is refused when the file is
loaded. Imports nothing of ours but errors and textfile.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Any

from .errors import ConfigError
from .textfile import shown

FLAGS = "imsx"  # the flags written after the closing slash: /pattern/is
_LAYOUT_SPACE = frozenset(" \t\n\r\v\f")  # what re.X skips; other spaces (U+00A0) are pattern
# /pattern/ and letters after it: any letters, so that a typo in the flags is refused rather than read as text.
_SLASHED = re.compile(r"/(.*)/([A-Za-z]*)", re.S)




def _without_verbose_layout(pattern: str) -> str:
    """What the x flag means (Python's re.X): whitespace and #-comments outside [...] are layout, not pattern."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            out.append(char)
            i += 1
            for literal in ("^", "]"):  # [^...] and a ] first in the class are part of it
                if pattern.startswith(literal, i):
                    out.append(literal)
                    i += 1
            continue
        elif char in _LAYOUT_SPACE:
            i += 1
            continue
        elif char == "#":
            end = pattern.find("\n", i)
            i = len(pattern) if end < 0 else end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _refusal(text: str, where: str, error: str) -> ConfigError:
    start = f"{where}: expect {shown(text)}"
    if re.search(r"invalid escape sequence: \\[1-9]", error):
        return ConfigError(f"{start} uses a backreference (\\1), which cannot be matched in linear time: rewrite it "
                           "without one")
    if re.search(r"invalid perl operator: \(\?<?[=!]", error):
        return ConfigError(f"{start} uses lookaround ((?=...), (?!...), (?<=...), (?<!...)), which cannot be matched "
                           "in linear time: rewrite it without")
    return ConfigError(f"{start} is not a valid regular expression: {error}")


@dataclass(frozen=True)
class Expectation:
    """What an answer must contain: a substring, or a regular expression written /like this/ (flags after it)."""

    text: str
    pattern: Any = None  # a compiled RE2 pattern, or None for a substring

    @classmethod
    def parse(cls, text: str, where: str) -> "Expectation":
        match = _SLASHED.fullmatch(text)
        if not match:
            return cls(text)
        body, flags = match.groups()
        unknown = [letter for letter in flags if letter not in FLAGS]
        if unknown:
            raise ConfigError(f"{where}: expect {shown(text)} has an unknown flag {unknown[0]!r} after the closing "
                              "slash; flags are i, m, s or x (for the text itself, write the slashes as \\/ inside "
                              "/.../)")
        if "x" in flags:
            body = _without_verbose_layout(body)
        inline = "".join(sorted(set(flags) - {"x"}))
        import re2  # only where a file has a pattern: the import takes a fifth of a second

        options = re2.Options()
        options.log_errors = False  # RE2 would write its own line to the process's stderr; ours says it once
        try:
            pattern = re2.compile(f"(?{inline}){body}" if inline else body, options)
        except re2.error as exc:
            error = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise _refusal(text, where, error) from None
        return cls(text, pattern)

    def met_by(self, answer: str | None) -> bool:
        if answer is None:
            return False
        if self.pattern is None:
            return self.text in answer
        # RE2 reads UTF-8: a lone surrogate an answer's JSON escaped (\ud800) is no character, so it stands as U+FFFD.
        return bool(self.pattern.search(answer.encode("utf-8", "replace").decode("utf-8")))
