"""Offline verification of an export: does it hold exactly what the log signed?

Steps: (1) the checkpoint note verifies under the auditor's key; (2) the
leaf-hash hint is authenticated by recomputing the checkpoint's root from it
(a hint that does not reproduce the signed root is ignored); (3) each entry's
leaf hash is recomputed from its bytes, and the root of all of them must equal
the checkpoint's root at the checkpoint's size; (4) an optional earlier trusted
checkpoint must be a prefix of the log; (5) enclave call-audit batches verify
and chain per enclave key. When (3) fails, the problems say what
happened and where: against authenticated hashes exactly, otherwise from the
entries' own seq numbers (and the earlier checkpoint bounds the search).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import merkle
from .calls import check_logged_batches
from .checkpoint import Checkpoint, NoteVerifier, open_note
from .entry import LogEntry
from .errors import CheckpointError, LogTamperedError, ProofError
from .export import Export, load_export, parse_entries


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. `what`: checkpoint, edited, deleted, inserted, reordered, truncated, extended,
    rewritten, calls."""

    what: str
    seq: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checkpoint: Checkpoint | None
    entries: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    previous: Checkpoint | None = None       # the earlier checkpoint given, once its signature verified

    @property
    def extends_previous(self) -> bool:
        """A previous checkpoint was given and this log, verified, extends it."""
        return self.previous is not None and self.ok

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        located = [p.seq for p in self.problems if p.seq is not None]
        return min(located) if located else None

    def raise_for_problems(self) -> None:
        if self.problems:
            first = self.problems[0]
            raise LogTamperedError(first.seq, first.what, first.detail)


def verify_export(directory: str | Path, verifier: NoteVerifier | str | None = None, *,
                  previous: str | None = None) -> VerifyReport:
    """Verify an export directory; `previous` is an earlier signed checkpoint the auditor trusts.

    Raises ValueError/OSError for a directory that is not an export and
    CheckpointError for a malformed `verifier`; everything found wrong with the
    log itself is a Problem in the report.
    """
    export = load_export(directory)
    warnings: list[str] = []
    if verifier is None:
        warnings.append("verifier key taken from the export itself; pin the log's key with --key")
        try:
            verifier = NoteVerifier.from_key_string(export.key)
        except CheckpointError as exc:
            return VerifyReport(None, len(export.lines), (Problem("checkpoint", None, exc.message),))
    elif isinstance(verifier, str):
        verifier = NoteVerifier.from_key_string(verifier)
    try:
        cp = open_note(export.checkpoint, [verifier])                                   # (1)
    except CheckpointError as exc:
        return VerifyReport(None, len(export.lines), (Problem("checkpoint", None, exc.message),), tuple(warnings))
    problems = _check_origin(export, cp)
    authentic = _authenticate_hint(export.leaf_hashes, cp, warnings)                   # (2)
    hashes = [merkle.leaf_hash(line) for line in export.lines]
    if export.filtered:
        problems += _check_view(export, hashes, authentic)
    else:
        problems += _check_full(export, hashes, cp, authentic)                         # (3)
    old = None
    if previous is not None:
        found, old = _check_previous(previous, verifier, cp, hashes, problems)         # (4)
        problems += found
    problems += _check_call_batches(export)                                            # (5)
    return VerifyReport(cp, len(export.lines), tuple(problems), tuple(warnings), old)


def _check_call_batches(export: Export) -> list[Problem]:
    """Enclave call-audit batches: signatures and one unbroken chain per enclave key (full logs only;
    a filtered view may leave batches out)."""
    batches = [(e.seq, e.calls) for e in parse_entries(export.lines) if e is not None and e.calls is not None]
    if export.filtered:
        return []
    return [Problem("calls", seq, detail) for seq, detail in check_logged_batches(batches)]


def _check_origin(export: Export, cp: Checkpoint) -> list[Problem]:
    origin = export.manifest.get("origin")
    if origin != cp.origin:
        return [Problem("checkpoint", None, f"checkpoint is for log {cp.origin!r}, export says {origin!r}")]
    return []


def _authenticate_hint(hint: list[bytes] | None, cp: Checkpoint, warnings: list[str]) -> list[bytes] | None:
    if hint is not None and len(hint) >= cp.size and merkle.root(hint[: cp.size]) == cp.root_hash:
        return hint[: cp.size]
    warnings.append("leaf-hashes does not reproduce the signed root; problems are located by seq only")
    return None


def _check_full(export: Export, hashes: list[bytes], cp: Checkpoint,
                authentic: list[bytes] | None) -> list[Problem]:
    parsed = parse_entries(export.lines)
    if len(hashes) == cp.size and merkle.root(hashes) == cp.root_hash:
        return [Problem("edited", i, "signed, but not a canonical log entry (a broker bug)")
                for i, e in enumerate(parsed) if e is None or e.seq != i]
    found = _by_hash(hashes, authentic) if authentic is not None else _by_seq(parsed, cp.size)
    return found or [Problem("edited", None, f"the {len(hashes)} entries do not reproduce the root of "
                                             f"checkpoint size {cp.size}; no entry could be singled out")]


def _by_hash(hashes: list[bytes], authentic: list[bytes]) -> list[Problem]:
    """Locate changes exactly, position by position, against authenticated leaf hashes."""
    count, size = len(hashes), len(authentic)
    bad = [i for i in range(min(count, size)) if hashes[i] != authentic[i]]
    if count > size:
        at = bad[0] if bad else size
        what = "inserted" if bad else "extended"
        return [Problem(what, at, f"{count - size} more entries than the checkpoint's {size}")]
    if count < size:
        if bad:
            return [Problem("deleted", bad[0], f"{size - count} entries fewer than the checkpoint's {size}")]
        return [Problem("truncated", count, f"the log ends at {count}; the checkpoint covers {size}")]
    if bad and Counter(hashes) == Counter(authentic):
        return [Problem("reordered", bad[0], f"entries at {', '.join(map(str, bad[:8]))} are out of place")]
    return [Problem("edited", i, "leaf hash differs from the one the checkpoint covers") for i in bad]


def _by_seq(parsed: Sequence[LogEntry | None], size: int) -> list[Problem]:
    """Locate changes from the seq numbers entries carry (when no authenticated hashes exist)."""
    seqs = [e.seq if e is not None else i for i, e in enumerate(parsed)]
    problems = [Problem("edited", i, f"line {i} is not a canonical log entry") for i, e in enumerate(parsed)
                if e is None]
    seen: set[int] = set()
    for i, s in enumerate(seqs):
        if (s in seen or s >= size) and not any(p.what in ("inserted", "extended") for p in problems):
            what = "extended" if s >= size and all(t >= size for t in seqs[i:]) else "inserted"
            problems.append(Problem(what, i, f"line {i} holds seq {s}, already present or beyond size {size}"))
        seen.add(s)
    unique = [s for s in dict.fromkeys(seqs) if s < size]
    if unique != sorted(unique):
        first = next(t for s, t in zip(unique, sorted(unique)) if s != t)
        problems.append(Problem("reordered", first, f"seq {first} is not where seq order puts it"))
    missing = sorted(set(range(size)) - seen)
    if missing:
        tail = missing[0] > max(seen, default=-1)
        problems.append(Problem("truncated" if tail else "deleted", missing[0],
                                f"{len(missing)} seq numbers below {size} are missing"))
    return problems


def _check_view(export: Export, hashes: list[bytes], authentic: list[bytes] | None) -> list[Problem]:
    """A filtered view: each entry present must be the signed entry at its seq."""
    if authentic is None:
        return [Problem("edited", None, "a filtered view needs leaf hashes that reproduce the signed root")]
    problems, last = [], -1
    for i, (entry, h) in enumerate(zip(parse_entries(export.lines), hashes)):
        if entry is None or entry.seq is None or entry.seq >= len(authentic):
            problems.append(Problem("inserted", None, f"line {i} is not an entry the checkpoint covers"))
        elif authentic[entry.seq] != h:
            problems.append(Problem("edited", entry.seq, "leaf hash differs from the one the checkpoint covers"))
        elif entry.seq <= last:
            problems.append(Problem("reordered", entry.seq, "view entries are not in seq order"))
        else:
            last = entry.seq
    return problems


def _check_previous(previous: str, verifier: NoteVerifier, cp: Checkpoint, hashes: list[bytes],
                    found: list[Problem]) -> tuple[list[Problem], Checkpoint | None]:
    """An earlier trusted checkpoint must describe a prefix of this log: the problems, and that checkpoint."""
    try:
        old = open_note(previous, [verifier])
    except CheckpointError as exc:
        return [Problem("checkpoint", None, f"previous checkpoint: {exc.message}")], None
    return _prefix_problems(old, cp, hashes, found), old


def _prefix_problems(old: Checkpoint, cp: Checkpoint, hashes: list[bytes], found: list[Problem]) -> list[Problem]:
    if old.origin != cp.origin:
        return [Problem("checkpoint", None, f"previous checkpoint is for log {old.origin!r}")]
    if old.size > cp.size:
        return [Problem("truncated", cp.size, f"an earlier checkpoint covered {old.size} entries, this one {cp.size}")]
    if old.size <= len(hashes) and merkle.root(hashes[: old.size]) == old.root_hash:
        if found and all(p.seq is None for p in found):
            return [Problem("edited", None, f"the first {old.size} entries match the previous checkpoint; "
                                            f"the change is at or after seq {old.size}")]
        return []
    if not found:
        return [Problem("rewritten", None, f"the signed log is not an extension of the earlier checkpoint "
                                           f"of size {old.size}: a fork or rewrite")]
    return [Problem("edited", None, f"the change is before seq {old.size} (the previous checkpoint's size)")] \
        if all(p.seq is None for p in found) else []


def verify_consistency_between(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that checkpoint `new` extends `old` (same log) with an RFC 9162 consistency proof."""
    if old.origin != new.origin:
        raise ProofError(f"checkpoints are for different logs: {old.origin!r} and {new.origin!r}")
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
