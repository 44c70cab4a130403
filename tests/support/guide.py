"""A guide's runnable parts, read from its fenced blocks, in the order they appear.

* a ``console`` block: each line starting with ``$ `` is a command; the lines after it, up to
  the next command, are output lines that must appear in what it prints (``...`` stands for
  anything, runs of spaces for any spacing);
* a block with ``title="path"``: the file ``path``, written whole (``diff`` blocks: applied to
  it, context lines starting with a space, added lines with ``+``, removed lines with ``-``);
* any other block is an illustration, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>(?:.*\n)*?)```[ \t]*$", re.M)
TITLE = re.compile(r'\btitle="(?P<path>[^"]+)"')


@dataclass
class Step:
    """One runnable part: a ``command`` (with ``expected`` output lines), a ``file`` or a
    ``diff`` (``text`` is the file's content or the diff)."""

    kind: str
    text: str
    path: str = ""
    expected: list[str] = field(default_factory=list)


def steps(markdown: str) -> list[Step]:
    """The runnable steps of ``markdown``, in order."""
    found: list[Step] = []
    for block in FENCE.finditer(markdown):
        info, body = block["info"].strip(), block["body"]
        language = info.split()[0] if info else ""
        title = TITLE.search(info)
        if title is not None:
            kind = "diff" if language == "diff" else "file"
            found.append(Step(kind, body, path=title["path"]))
        elif language == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    found.append(Step("command", line[2:].strip()))
                elif line.strip():
                    assert found and found[-1].kind == "command", f"output before a command: {line}"
                    found[-1].expected.append(line.strip())
    return found


def line_pattern(expected: str) -> re.Pattern[str]:
    """An expected output line as a pattern: ``...`` matches anything, spaces any spacing."""
    pieces = [r"\s+".join(map(re.escape, piece.split())) for piece in expected.split("...")]
    return re.compile(".*".join(pieces))


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines that match no line of ``output``."""
    lines = output.splitlines()
    return [want for want in expected
            if not any(line_pattern(want).search(line) for line in lines)]


def apply_diff(text: str, diff: str) -> str:
    """``text`` with ``diff``'s lines replaced; its context must occur exactly once."""
    old: list[str] = []
    new: list[str] = []
    for line in diff.splitlines():
        mark, rest = (line[:1], line[1:]) if line else (" ", "")
        if mark not in " +-":
            raise ValueError(f"a diff line starts with ' ', '+' or '-': {line!r}")
        if mark != "+":
            old.append(rest)
        if mark != "-":
            new.append(rest)
    before, after = "\n".join(old) + "\n", "\n".join(new) + "\n"
    assert text.count(before) == 1, f"the diff's context is not found once:\n{before}"
    return text.replace(before, after)
