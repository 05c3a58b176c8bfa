"""The export directory auditors take offline, and filters for viewing it.

    entries.jsonl   one entry per line: its canonical (RFC 8785) bytes exactly as
                    stored (the Merkle leaf data), then "\\n"; seq order
    leaf-hashes     one lower-case hex leaf hash per line for every entry the
                    checkpoint covers: a hint that verification authenticates
                    against the signed root, then uses to pinpoint a bad entry
    checkpoint      the signed checkpoint note covering the entries
    log-key.pub     the log's verifier key string (auditors should pin their own)
    manifest.json   format, version, origin, size, and the filter of a partial view

A full export holds entries 0 … size-1. A filtered export (a view for
`veil audit show`) holds a subset; each entry in it is still checked against
the authenticated leaf hashes, but what was left out cannot be checked.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from attestation.fsutil import atomic_write

from .checkpoint import split_note
from .entry import LogEntry
from .log import AuditLog

FORMAT = "veil-audit-export"
VERSION = 1
ENTRIES, LEAF_HASHES, CHECKPOINT, KEY, MANIFEST = (
    "entries.jsonl", "leaf-hashes", "checkpoint", "log-key.pub", "manifest.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryFilter:
    """Which entries a view shows; None means any."""

    since: datetime | None = None
    until: datetime | None = None
    resource: str | None = None          # a glob, e.g. "models/llama-*/*"
    decision: str | None = None          # "allow" or "deny"
    kind: str | None = None

    def matches(self, entry: LogEntry) -> bool:
        if self.since is not None and entry.time < self.since:
            return False
        if self.until is not None and entry.time > self.until:
            return False
        if self.resource is not None and not fnmatch.fnmatchcase(entry.resource or "", self.resource):
            return False
        if self.decision is not None and entry.decision != self.decision:
            return False
        return self.kind is None or entry.kind == self.kind

    def is_empty(self) -> bool:
        return self == EntryFilter()

    def document(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()
                if v is not None}


@dataclass(frozen=True, slots=True)
class Export:
    """An export directory as read from disk; nothing in it is trusted yet."""

    directory: Path
    manifest: dict
    lines: list[bytes]                   # entries.jsonl, one leaf data per element
    leaf_hashes: list[bytes] | None
    checkpoint: str
    key: str

    @property
    def filtered(self) -> bool:
        return bool(self.manifest.get("filter"))


def export_log(log: AuditLog, directory: str | Path, entry_filter: EntryFilter | None = None) -> Path:
    """Write the log, up to a checkpoint covering every entry, into `directory` (new or empty)."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty; export into a new directory")
    note = log.store.latest_checkpoint()
    if note is None or _note_size(note) != log.store.size():
        note = log.checkpoint()
    size = _note_size(note)
    hashes = log.store.leaf_hashes(0, size)
    lines = list(log.store.entries(0, size))
    if entry_filter is not None and not entry_filter.is_empty():
        lines = [line for line in lines if entry_filter.matches(LogEntry.from_canonical(line))]
    manifest = {"format": FORMAT, "version": VERSION, "origin": log.origin, "size": size,
                "entries": len(lines), "filter": entry_filter.document() if entry_filter else {}}
    atomic_write(directory / ENTRIES, b"".join(line + b"\n" for line in lines))
    atomic_write(directory / LEAF_HASHES, "".join(h.hex() + "\n" for h in hashes).encode())
    atomic_write(directory / CHECKPOINT, note.encode())
    atomic_write(directory / KEY, (log.verifier.key_string() + "\n").encode())
    atomic_write(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return directory


def write_broker_export(data: dict, directory: str | Path) -> tuple[int, bool]:
    """Write the broker's `GET /admin/v1/audit/export` answer as an export directory (new or empty).

    Returns (entries written, whether they are the whole log). A tenant that sees only part of the log
    gets a view (filter `{"tenant": …}`). ValueError if `data` is not an export answer."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(f"{directory} exists and is not an empty directory; export into a new one")
    try:
        items = sorted(data["entries"], key=lambda item: item["seq"])
        lines = [item["entry"].encode() for item in items]
        full = [item["seq"] for item in items] == list(range(data["size"]))
        manifest = {"format": FORMAT, "version": VERSION, "origin": data["origin"], "size": data["size"],
                    "entries": len(lines), "filter": {} if full else {"tenant": data.get("tenant")}}
        files = {ENTRIES: b"".join(line + b"\n" for line in lines),
                 LEAF_HASHES: "".join(h + "\n" for h in data["leaf_hashes"]).encode(),
                 CHECKPOINT: data["checkpoint"].encode(), KEY: (data["log_key"] + "\n").encode(),
                 MANIFEST: (json.dumps(manifest, indent=2) + "\n").encode()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a log export ({type(exc).__name__}: {exc})") from None
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        atomic_write(directory / name, content)
    return len(lines), full


def _note_size(note: str) -> int:
    text, _ = split_note(note)
    return int(text.split("\n")[1])


def load_export(directory: str | Path) -> Export:
    """Read an export directory. Raises ValueError / OSError for a directory that is not one."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise ValueError(f"{directory} is not an audit export (no {MANIFEST})")
    manifest = json.loads((directory / MANIFEST).read_text())
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{directory / MANIFEST}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{directory / MANIFEST}: unsupported version {manifest.get('version')!r}")
    return Export(directory=directory, manifest=manifest, lines=read_lines(directory / ENTRIES),
                  leaf_hashes=_read_hashes(directory / LEAF_HASHES), checkpoint=(directory / CHECKPOINT).read_text(),
                  key=(directory / KEY).read_text().strip() if (directory / KEY).is_file() else "")


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if not data:
        return []
    if not data.endswith(b"\n"):
        data += b"\n"                      # a truncated last line is still examined
    return data[:-1].split(b"\n")


def _read_hashes(path: Path) -> list[bytes] | None:
    """The leaf-hash hint, or None when it is absent or unreadable (it is only a hint)."""
    try:
        return [bytes.fromhex(line.decode()) for line in read_lines(path)]
    except (OSError, ValueError):
        return None


def parse_entries(lines: Iterable[bytes]) -> list[LogEntry | None]:
    """Each line as an entry, or None where it is not one (not JSON, not canonical, invalid)."""
    out: list[LogEntry | None] = []
    for line in lines:
        try:
            out.append(LogEntry.from_canonical(line))
        except ValueError:
            out.append(None)
    return out


def export_view(source: str | Path, directory: str | Path, entry_filter: EntryFilter) -> Path:
    """Write a filtered view of an existing export (same checkpoint and leaf hashes) into `directory`."""
    export, directory = load_export(source), Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty; export into a new directory")
    kept = [line for line, entry in zip(export.lines, parse_entries(export.lines))
            if entry is not None and entry_filter.matches(entry)]
    manifest = {**export.manifest, "entries": len(kept), "filter": entry_filter.document()}
    atomic_write(directory / ENTRIES, b"".join(line + b"\n" for line in kept))
    for name in (LEAF_HASHES, CHECKPOINT, KEY):
        if (export.directory / name).is_file():
            atomic_write(directory / name, (export.directory / name).read_bytes())
    atomic_write(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return directory
