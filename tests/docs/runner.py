"""Run the shell commands a markdown document shows, the way a reader would type them.

Conventions (docs/README-style markdown):

- A fenced block tagged ``console`` (or an untagged block whose lines start with ``$ ``) is a
  transcript: each ``$ `` line is a command; a line ending in ``\\``, an unclosed quote or a
  here-document continues it; the lines after it, up to the next command, are its output.
- ``[exit N]`` among the output says the command exits with N (default 0).
- The last output line shown (the step's key line) must appear in what the command printed,
  whitespace and line wrapping ignored; ``…`` in it stands for anything. Lines drawn with
  box characters (tables, whose layout follows the terminal's width) and a lone ``…`` are not
  checked.
- A block tagged ``sh``, ``bash`` or ``shell`` holds commands without output, one per line.
- ``<!-- docs-test: skip (why) -->`` just before a block leaves it out; the reason is required.

All commands of one document run in order in one bash session (so ``cd``, ``export`` and
background jobs ``&`` carry over); the session stops at the first unexpected exit code, and
background jobs still running at the end are sent SIGTERM and waited for.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SHELL_TAGS = {"sh", "bash", "shell"}
BOX = re.compile(r"[│┃┏┓┗┛┡┩└┘┌┐━─╇╈┼┬┴]")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")
EXIT = re.compile(r"^\[exit (\d+)\]$")
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
FENCE = re.compile(r"^(`{3,})(\S*)\s*$")


@dataclass
class Command:
    text: str
    line: int                       # where it starts in the document (1-based)
    output: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def key_line(self) -> str | None:
        """The last output line shown that can be checked, or None."""
        for text in reversed(self.output):
            stripped = text.strip()
            if stripped and stripped != "…" and not EXIT.match(stripped) and not BOX.search(stripped):
                return stripped
        return None


@dataclass
class Block:
    tag: str
    line: int
    lines: list[str]
    skip: str | None = None


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with the skip reason of a `docs-test: skip` comment right above it."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i, pending_skip = 0, None
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            mark = SKIP.search(lines[i])
            if mark:
                pending_skip = mark.group("why").strip()
            elif lines[i].strip():
                pending_skip = None
            i += 1
            continue
        ticks, start, body = fence.group(1), i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i])
            i += 1
        found.append(Block(fence.group(2), start, body, pending_skip))
        pending_skip, i = None, i + 1
    return found


def is_command_block(block: Block) -> bool:
    if block.tag in SHELL_TAGS or block.tag == "console":
        return True
    return block.tag == "" and any(line.startswith("$ ") for line in block.lines)


def _complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:   # an unclosed quote: the command goes on
        return False
    return True


def _take_command(lines: list[str], i: int) -> tuple[str, int]:
    """The command starting at lines[i] (prompt removed) and the index after it."""
    parts = [lines[i][2:] if lines[i].startswith("$ ") else lines[i]]
    i += 1
    while i < len(lines) and not _complete("\n".join(parts)):
        parts.append(lines[i])
        i += 1
    heredoc = HEREDOC.search(parts[0])
    if heredoc and "<<<" not in parts[0]:
        while i < len(lines):
            parts.append(lines[i])
            i += 1
            if lines[i - 1].strip() == heredoc.group(1):
                break
    return "\n".join(parts), i


def commands(block: Block) -> list[Command]:
    """The commands of one command block, with the output each shows."""
    found: list[Command] = []
    lines, i = block.lines, 0
    transcript = block.tag not in SHELL_TAGS
    while i < len(lines):
        line = lines[i]
        is_command = line.startswith("$ ") if transcript else bool(line.strip()) and not line.lstrip().startswith("#")
        if not is_command:
            if transcript and found:
                code = EXIT.match(line.strip())
                if code:
                    found[-1].exit_code = int(code.group(1))
                else:
                    found[-1].output.append(line)
            i += 1
            continue
        start = i
        text, i = _take_command(lines, i)
        found.append(Command(text, block.line + start + 1))
    return found


def document_commands(path: Path) -> tuple[list[Command], list[tuple[int, str]]]:
    """(commands to run, [(line, reason)] of skipped blocks)."""
    runnable, skipped = [], []
    for block in blocks(path.read_text(encoding="utf-8")):
        if not is_command_block(block):
            continue
        if block.skip is not None:
            skipped.append((block.line, block.skip))
        else:
            runnable += commands(block)
    return runnable, skipped


@dataclass
class Outcome:
    command: Command
    ran: bool
    exit_code: int | None
    output: str

    def problem(self) -> str | None:
        where = f"line {self.command.line}: $ {self.command.text}"
        if not self.ran:
            return None
        if self.exit_code != self.command.exit_code:
            return f"{where}\n  exit {self.exit_code}, the doc says {self.command.exit_code}\n{_tail(self.output)}"
        key = self.command.key_line
        if key is not None and not shows(self.output, key):
            return f"{where}\n  the doc shows {key!r}, which it did not print\n{_tail(self.output)}"
        return None


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("  | " + line for line in text.splitlines()[-lines:])


def _squash(text: str) -> str:
    return " ".join(text.split())


def shows(output: str, key_line: str) -> bool:
    """Whether `output` contains `key_line`, whitespace and wrapping ignored, `…` matching anything."""
    pattern = ".*?".join(re.escape(_squash(part)) for part in key_line.split("…"))
    return re.search(pattern, _squash(output)) is not None


def _script(cmds: list[Command], results: Path) -> str:
    out = ["trap 'for p in $(jobs -p); do kill -TERM $p 2>/dev/null; done; wait' EXIT"]
    for n, cmd in enumerate(cmds):
        out.append(f"{{\n{cmd.text}\n}} >{results}/{n}.out 2>&1 </dev/null")
        out.append(f"rc=$?; echo $rc >{results}/{n}.rc; [ $rc -eq {cmd.exit_code} ] || exit 97")
    return "\n".join(out) + "\n"


def run_document(path: Path, cwd: Path, env: dict[str, str], timeout: float = 600) -> list[Outcome]:
    """Run every command of `path` in one bash session started in `cwd`; one Outcome per command."""
    cmds, _ = document_commands(path)
    results = cwd.parent / f".docs-test-{path.stem}"
    results.mkdir(exist_ok=True)
    proc = subprocess.Popen(["bash", "-c", _script(cmds, results)], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    outcomes = []
    for n, cmd in enumerate(cmds):
        rc_file, out_file = results / f"{n}.rc", results / f"{n}.out"
        output = out_file.read_text(errors="replace") if out_file.exists() else ""
        ran = rc_file.exists()
        code = int(rc_file.read_text()) if ran else None
        if not ran and out_file.exists():   # started, never finished: the session timed out here
            ran, code = True, -1
        outcomes.append(Outcome(cmd, ran, code, output))
    return outcomes


def scratch_clone(repo: Path, scratch: Path) -> Path:
    """A directory standing for a user's clone: every top-level entry of `repo` linked into it."""
    clone = scratch / "veil"
    clone.mkdir(parents=True, exist_ok=True)
    for entry in repo.iterdir():
        if entry.name not in (".git",) and not (clone / entry.name).exists():
            (clone / entry.name).symlink_to(entry)
    return clone
