"""`veil audit …`: verify, prove, show and re-verify an exported attestation log, offline.

Exit codes: 0 verified / consistent, 1 tampered or a recorded decision not
reproduced, 2 unreadable input or bad usage.
"""

from __future__ import annotations

import os
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from keybroker.audit import merkle
from keybroker.audit.checkpoint import NoteSigner, NoteVerifier
from keybroker.audit.errors import AuditError, CheckpointError
from keybroker.audit.export import EntryFilter, export_view, load_export, parse_entries
from keybroker.audit.reverify import Outcome, reverify
from keybroker.audit.verify import VerifyReport, verify_export

from .output import EXIT_FAILED, EXIT_OK, console, fail, print_json

app = typer.Typer(help="Verify and inspect the key broker's attestation log (an export directory), offline.",
                  no_args_is_help=True)

DirArg = Annotated[Path, typer.Argument(help="Export directory (entries.jsonl, checkpoint, manifest.json, …).")]
KeyOpt = Annotated[Optional[str], typer.Option(
    "--key", help="The log's verifier key: a file holding it, or the key string itself "
                  "(name+keyid+base64). Default: the export's log-key.pub (not independent).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


class DecisionChoice(StrEnum):
    allow = "allow"
    deny = "deny"


class KindChoice(StrEnum):
    attestation = "attestation"
    release = "release"
    denial = "denial"
    admin = "admin"
    calls = "calls"


def _action(e) -> str:
    if e.calls is not None:
        return f"call records {e.calls.get('first_seq')}–{e.calls.get('last_seq')} (enclave call audit)"
    if e.actor and e.action:
        return f"{e.actor}: {e.action}"
    return e.action or ""


def read_key(value: str | None) -> NoteVerifier | None:
    """A verifier from a file or a key string; exits 2 if it is neither."""
    if value is None:
        return None
    text = value
    if os.path.isfile(value):
        try:
            text = Path(value).read_text().strip()
        except OSError as exc:
            fail(f"cannot read key file {value}: {exc.strerror}")
    try:
        return NoteVerifier.from_key_string(text)
    except CheckpointError as exc:
        fail(f"--key: {exc.message}")


def read_text(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}")


def checked_export(directory: Path, key: str | None, previous: Path | None = None) -> VerifyReport:
    verifier = read_key(key)
    prior = read_text(previous, "previous checkpoint")
    try:
        return verify_export(directory, verifier, previous=prior)
    except (OSError, ValueError) as exc:
        fail(f"{directory}: {getattr(exc, 'strerror', None) or exc}")


def report_document(report: VerifyReport) -> dict:
    cp = report.checkpoint
    return {"verified": report.ok, "origin": cp.origin if cp else None, "size": cp.size if cp else None,
            "root_hash": cp.root_hash.hex() if cp else None, "entries": report.entries,
            "first_bad_seq": report.first_bad_seq,
            "problems": [{"what": p.what, "seq": p.seq, "detail": p.detail} for p in report.problems],
            "warnings": list(report.warnings),
            "extends_previous": {"previous_size": report.previous.size, "size": cp.size}
            if report.extends_previous and cp else None}


def render_report(report: VerifyReport) -> None:
    cp = report.checkpoint
    if report.ok and cp is not None:
        held = f"{cp.size} entries" if report.entries == cp.size else \
            f"{report.entries} of the {cp.size} entries (a filtered view)"
        console.print(f"[bold green]verified[/] {cp.origin}: {held}, root {cp.root_hash.hex()}", highlight=False)
        if report.extends_previous:
            console.print(f"  [green]✓[/] extends the previous checkpoint (size {report.previous.size} → {cp.size})",
                          highlight=False)
    else:
        console.print(f"[bold red]NOT verified[/]: {len(report.problems)} problem(s)", highlight=False)
    for p in report.problems:
        where = f" at seq {p.seq}" if p.seq is not None else ""
        console.print(f"  [red]✗ {p.what}{where}[/]: {p.detail}", highlight=False)
    for w in report.warnings:
        console.print(f"  [yellow]![/] {w}", highlight=False)


@app.command("verify")
def verify_cmd(directory: DirArg, key: KeyOpt = None, previous: Annotated[Optional[Path], typer.Option(
        help="An earlier signed checkpoint you trust: the log must extend it.")] = None,
        json_out: JsonOpt = False) -> None:
    """Check every entry against the signed checkpoint; name what was edited, deleted, inserted or reordered."""
    report = checked_export(directory, key, previous)
    print_json(report_document(report)) if json_out else render_report(report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


@app.command("prove")
def prove_cmd(directory: DirArg, key: KeyOpt = None,
              seq: Annotated[Optional[int], typer.Option(help="Prove that entry SEQ is in the log.")] = None,
              consistency: Annotated[Optional[int], typer.Option(
                  help="Prove that the log's first OLD_SIZE entries are a prefix of it.")] = None,
              json_out: JsonOpt = False) -> None:
    """Print an RFC 9162 inclusion or consistency proof against the export's checkpoint, and check it."""
    if (seq is None) == (consistency is None):
        fail("give exactly one of --seq N or --consistency OLD_SIZE")
    report = checked_export(directory, key)
    if not report.ok:
        render_report(report)
        raise typer.Exit(EXIT_FAILED)
    cp = report.checkpoint
    hashes = [merkle.leaf_hash(line) for line in load_export(directory).lines]
    try:
        doc = _inclusion(seq, cp, hashes) if seq is not None else _consistency(consistency, cp, hashes)
    except AuditError as exc:
        fail(exc.message)
    if json_out:
        print_json(doc)
    else:
        for name, value in doc.items():
            console.print(f"{name}: " + ("\n  ".join([""] + value) if isinstance(value, list) else str(value)),
                          highlight=False)
        console.print("[bold green]proof verified[/] against the signed checkpoint", highlight=False)
    raise typer.Exit(EXIT_OK)


def _inclusion(seq: int, cp, hashes: list[bytes]) -> dict:
    proof = merkle.inclusion_proof(seq, cp.size, hashes)
    merkle.verify_inclusion(seq, cp.size, hashes[seq], proof, cp.root_hash)
    return {"type": "inclusion", "seq": seq, "tree_size": cp.size, "leaf_hash": hashes[seq].hex(),
            "root_hash": cp.root_hash.hex(), "proof": [p.hex() for p in proof]}


def _consistency(old_size: int, cp, hashes: list[bytes]) -> dict:
    proof = merkle.consistency_proof(old_size, cp.size, hashes)
    old_root = merkle.root(hashes[:old_size])
    merkle.verify_consistency(old_size, cp.size, old_root, cp.root_hash, proof)
    return {"type": "consistency", "old_size": old_size, "old_root_hash": old_root.hex(),
            "tree_size": cp.size, "root_hash": cp.root_hash.hex(), "proof": [p.hex() for p in proof]}


def entry_filter(since: str | None, until: str | None, resource: str | None,
                 decision: DecisionChoice | None, kind: KindChoice | None) -> EntryFilter:
    from .attest import parse_time

    return EntryFilter(since=parse_time(since) if since else None, until=parse_time(until) if until else None,
                       resource=resource, decision=decision.value if decision else None,
                       kind=kind.value if kind else None)


SinceOpt = Annotated[Optional[str], typer.Option(help="Only entries at or after this ISO-8601 time.")]
UntilOpt = Annotated[Optional[str], typer.Option(help="Only entries at or before this ISO-8601 time.")]
ResourceOpt = Annotated[Optional[str], typer.Option(help="Only entries whose resource matches this glob.")]
DecisionOpt = Annotated[Optional[DecisionChoice], typer.Option(help="Only allow or deny decisions.")]
KindOpt = Annotated[Optional[KindChoice], typer.Option(help="Only entries of this kind.")]


@app.command("show")
def show_cmd(directory: DirArg, since: SinceOpt = None, until: UntilOpt = None, resource: ResourceOpt = None,
             decision: DecisionOpt = None, kind: KindOpt = None, json_out: JsonOpt = False) -> None:
    """List entries (nothing is verified here; run `veil audit verify` first)."""
    chosen = entry_filter(since, until, resource, decision, kind)
    try:
        export = load_export(directory)
    except (OSError, ValueError) as exc:
        fail(f"{directory}: {getattr(exc, 'strerror', None) or exc}")
    parsed = parse_entries(export.lines)
    shown = [e for e in parsed if e is not None and chosen.matches(e)]
    if json_out:
        print_json({"entries": [e.document() for e in shown], "unreadable": parsed.count(None)})
        raise typer.Exit(EXIT_OK)
    if not shown:
        console.print(f"0 entries{_matching(chosen, len(parsed))}", highlight=False)
        raise typer.Exit(EXIT_OK)
    table = Table()
    for column in ("seq", "time", "kind", "tee", "session", "resource", "decision", "policy", "reasons / action"):
        table.add_column(column, overflow="fold")
    for e in shown:
        style = {"allow": "green", "deny": "red"}.get(e.decision or "", "")
        table.add_row(str(e.seq), e.time.isoformat().replace("+00:00", "Z"), e.kind, e.tee or "",
                      e.session_id or "", e.resource or "", f"[{style}]{e.decision}[/]" if style else "",
                      f"{e.policy_id or ''}{'@' + str(e.policy_version) if e.policy_version else ''}",
                      ", ".join(r.code for r in e.reasons) or _action(e))
    console.print(table)
    console.print(f"{len(shown)} entr{'y' if len(shown) == 1 else 'ies'}{_matching(chosen, len(parsed))}",
                  highlight=False)
    if parsed.count(None):
        console.print(f"[yellow]![/] {parsed.count(None)} line(s) are not log entries", highlight=False)
    raise typer.Exit(EXIT_OK)


def _matching(chosen: EntryFilter, total: int) -> str:
    """The words that say a filter chose these entries, or nothing when none was given."""
    given = any(getattr(chosen, f) is not None for f in ("since", "until", "resource", "decision", "kind"))
    return f" match the filter (of {total} in the export)" if given else ""


@app.command("export")
def export_cmd(directory: DirArg, out: Annotated[Path, typer.Option(help="New directory for the view.")],
               since: SinceOpt = None, until: UntilOpt = None, resource: ResourceOpt = None,
               decision: DecisionOpt = None, kind: KindOpt = None) -> None:
    """Write a filtered view of an export; `veil audit verify` checks each entry it keeps."""
    try:
        export_view(directory, out, entry_filter(since, until, resource, decision, kind))
    except (OSError, ValueError) as exc:
        fail(f"{getattr(exc, 'strerror', None) or exc}")
    console.print(f"wrote a filtered view to {out}", highlight=False)


@app.command("fetch")
def fetch_cmd(out: Annotated[Path, typer.Option(help="New directory for the export.")],
              broker: Annotated[str, typer.Option(help="Broker admin URL.")] = "http://127.0.0.1:8080",
              admin_key: Annotated[Path, typer.Option(help="Private key file of an admin with the auditor "
                                                       "role.")] = Path("admin.key")) -> None:
    """Download the broker's log (entries your tenant may see, every leaf hash, a signed checkpoint) as an export."""
    from keybroker.admin.client import AdminClient
    from keybroker.audit.export import write_broker_export
    from keybroker.client import KbsError

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"{out} exists and is not an empty directory; fetch into a new one")
    try:
        data = AdminClient(broker, admin_key).export()
    except KbsError as exc:
        fail(f"{exc.code}: {exc.detail}", code=EXIT_FAILED)
    except (OSError, ValueError) as exc:
        fail(f"cannot fetch the log from {broker}: {exc}")
    try:
        written, full = write_broker_export(data, out)
    except ValueError as exc:
        fail(f"{broker} answered something that is {exc}")
    console.print(f"wrote {written} of {data['size']} entries to {out}"
                  + ("" if full else f" (tenant {data.get('tenant')!r}: a view)")
                  + f"; now run `veil audit verify {out}`", highlight=False)


@app.command("keygen")
def keygen_cmd(name: Annotated[str, typer.Option(help="Key name, e.g. the log's origin host.")],
               out: Annotated[Path, typer.Option(help="Where to write the private key (mode 0600).")]) -> None:
    """Generate a checkpoint-signing key. Prints only the public verifier key."""
    from attestation.fsutil import atomic_write

    if out.exists():
        fail(f"{out} exists; refusing to overwrite a key")
    try:
        signer = NoteSigner.generate(name)
    except CheckpointError as exc:
        fail(exc.message)
    atomic_write(out, (signer.private_key_string() + "\n").encode(), 0o600)
    console.print(signer.verifier.key_string(), highlight=False, soft_wrap=True)


def load_policies(location: Path) -> dict:
    """Every ReleasePolicy in `location` (one policy file, or a directory of them) by name; reference-values
    files in the same directory supply refs. Exits 2 on a path that is neither, or that holds no policy."""
    from policies import PolicyLoadError, load_policy
    from policies.loader import read_source

    if location.is_dir():
        directory, paths = location, sorted(p for p in location.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    elif location.is_file():
        directory, paths = location.parent, [location]
    else:
        fail(f"--policies {location}: no such file or directory; give a policy file or a directory of policies")
    found = {}
    for path in paths:
        try:
            if read_source(path).kind != "ReleasePolicy":
                continue
            policy = load_policy(path, references=[directory])
        except PolicyLoadError as exc:
            fail(f"{path}: {exc}")
        except OSError as exc:
            fail(f"--policies {path}: {exc.strerror}")
        found[policy.name] = policy
    if not found:
        fail(f"--policies {location}: holds no ReleasePolicy; give a policy file or a directory of policies")
    return found


@app.command("reverify")
def reverify_cmd(
    directory: DirArg, key: KeyOpt = None,
    collateral: Annotated[list[Path], typer.Option(
        help="Offline bundle directory, Intel collateral JSON or loose collateral files (repeatable).")] = [],
    certs: Annotated[list[Path], typer.Option("--certs", help="PEM/DER certificate file(s) (repeatable).")] = [],
    offline: Annotated[bool, typer.Option(help="Never contact Intel PCS or AMD KDS.")] = False,
    emulated_anchors: Annotated[Optional[Path], typer.Option(
        help="Also trust the emulated vendor anchors exported to this directory.")] = None,
    no_revocation: Annotated[bool, typer.Option("--no-revocation", help="Skip CRL checks.")] = False,
    allow_debug: Annotated[bool, typer.Option(help="Accept a debug TD / SNP guest.")] = False,
    policies_dir: Annotated[Optional[Path], typer.Option(
        "--policies", help="A release policy file, or a directory of policies (and reference values), to "
                           "replay decisions.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-verify each recorded evidence at its recorded time and compare claims and decisions."""
    from attestation.options import VerifyOptions

    from .attest import build_anchors, build_collateral, read_certificates

    report = checked_export(directory, key)
    supplied = read_certificates(certs)
    opts = VerifyOptions(anchors=build_anchors(emulated_anchors), collateral=build_collateral(
        collateral, supplied, offline), at=datetime.now().astimezone(), check_revocation=not no_revocation,
        allow_debug=allow_debug)
    policies = load_policies(policies_dir) if policies_dir is not None else None
    entries = [e for e in parse_entries(load_export(directory).lines) if e is not None]
    outcomes = reverify(entries, opts, policies)
    bad = [o for o in outcomes if o.mismatches]
    if json_out:
        print_json({"log_verified": report.ok, **_outcomes_document(outcomes), "mismatched": len(bad)})
    else:
        render_report(report)
        _render_outcomes(outcomes)
    raise typer.Exit(EXIT_OK if report.ok and not bad else EXIT_FAILED)


def _outcomes_document(outcomes: list[Outcome]) -> dict:
    return {"entries": [{"seq": o.seq, "checked": list(o.checked), "skipped": o.skipped or None,
                         "notes": list(o.notes),
                         "mismatches": [{"what": m.what, "recorded": m.recorded, "recomputed": m.recomputed,
                                         "detail": m.detail} for m in o.mismatches]} for o in outcomes]}


def _render_outcomes(outcomes: list[Outcome]) -> None:
    checked = [o for o in outcomes if not o.skipped]
    bad = [o for o in checked if o.mismatches]
    colour = "red" if bad else "green"
    console.print(f"[bold {colour}]{len(checked) - len(bad)} of {len(checked)}[/] re-verified entries match "
                  f"their record ({len(outcomes) - len(checked)} without evidence skipped)", highlight=False)
    for o in bad:
        for m in o.mismatches:
            console.print(f"  [red]✗ seq {o.seq} {m.what}[/]: recorded {m.recorded}, now {m.recomputed}"
                          + (f" [dim]({m.detail})[/]" if m.detail else ""), highlight=False)
    for o in checked:
        for note in o.notes:
            console.print(f"  [dim]seq {o.seq}: {note}[/]", highlight=False)
