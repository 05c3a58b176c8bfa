"""`veil policy …`: lint, test, generate and diff release policies.

Exit codes: 0 valid / allowed / no change, 1 denied (or evidence not verified) /
decisions would change, 2 bad input.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from attestation.claims import Claims
from attestation.errors import ParseError
from attestation.evidence import Evidence
from attestation.fsutil import atomic_write
from attestation.options import VerifyOptions
from attestation.verify import VerificationResult, verify
from policies import Decision, PolicyLoadError, evaluate, lint, load_policy
from policies.generate import policy_from_claims
from policies.replay import AttestationRecord, diff, read_log
from policies.resources import check_pattern
from policies.schema.common import check_name

from .attest import TeeChoice, build_anchors, build_collateral, parse_time, read_certificates, read_evidence
from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, console, err_console, fail, print_json

app = typer.Typer(help="Lint, test, generate and diff release policies.", no_args_is_help=True)

Refs = Annotated[list[Path], typer.Option("--refs", help="ReferenceValues file or directory (repeatable).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
TeeOpt = Annotated[TeeChoice, typer.Option(help="TEE type; auto detects it from the header.")]
CollateralOpt = Annotated[list[Path], typer.Option(
    help="Offline bundle directory, Intel collateral JSON or loose collateral files (repeatable; asked in turn).")]
CertsOpt = Annotated[list[Path], typer.Option("--certs", help="PEM/DER VCEK/VLEK, ASK/ASVK, ARK (repeatable).")]
AtOpt = Annotated[Optional[str], typer.Option(help="Verify and evaluate as of this ISO-8601 instant (default: now).")]
NoRevocation = Annotated[bool, typer.Option("--no-revocation", help="Skip CRL checks (reported as a warning).")]
OfflineOpt = Annotated[bool, typer.Option(help="Never contact Intel PCS or AMD KDS.")]
EmulatedOpt = Annotated[Optional[Path], typer.Option(help="Also trust emulated vendor anchors from this directory.")]
AllowDebugOpt = Annotated[bool, typer.Option(help="Let the verifier accept a debug guest (the policy still decides).")]


def _load(path: Path, refs: list[Path]):
    try:
        return load_policy(path, refs)
    except PolicyLoadError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False, markup=False)
        fail(f"{path}: policy does not load ({len(exc.problems)} problem(s))")


def _verify(evidence: Path, tee: TeeChoice, collateral: list[Path], certs: list[Path], moment: datetime,
            no_revocation: bool, offline: bool, emulated_anchors: Path | None, allow_debug: bool) -> VerificationResult:
    """Verify exactly as `veil attest verify` does with the same options."""
    tee_name, report = read_evidence(evidence, tee)
    supplied = read_certificates(certs)
    opts = VerifyOptions(anchors=build_anchors(emulated_anchors),
                         collateral=build_collateral(collateral, supplied, offline),
                         at=moment, check_revocation=not no_revocation, allow_debug=allow_debug)
    try:
        return verify(Evidence(tee=tee_name, report=report, certificates=supplied), opts)  # type: ignore[arg-type]
    except ParseError as exc:
        fail(f"{evidence}: {exc.message}")


def _failure_line(failure) -> str:
    """A verification failure as one line: its code, message, and expected and actual values where known."""
    line = f"{failure.code}: {failure.message}"
    if failure.expected is not None or failure.actual is not None:
        line += f" (expected {failure.expected}, actual {failure.actual})"
    return line


def _read_claims(path: Path) -> tuple[Claims | None, list[str]]:
    """Claims from `veil attest verify --json` output (whole document or its "claims")."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read claims {path}: {exc.strerror}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"{path} is not JSON: {exc}")
    if isinstance(doc, dict) and "verified" in doc and "claims" in doc:
        if not doc["verified"] or doc["claims"] is None:
            return None, [f"{e.get('code')}: {e.get('message')}" for e in doc.get("errors", [])]
        doc = doc["claims"]
    try:
        return Claims.model_validate(doc), []
    except ValidationError as exc:
        fail(f"{path} does not hold claims: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")


@app.command("lint")
def lint_cmd(files: Annotated[list[Path], typer.Argument(help="Policy (and ReferenceValues) files.")],
             refs: Refs = [], json_out: JsonOut = False) -> None:
    """Check policies: exit 0 valid, 2 invalid; every problem as file:line:column field: message."""
    problems = lint(files, refs)
    errors = [p for p in problems if p.severity == "error"]
    if json_out:
        print_json({"valid": not errors, "problems": [vars(p) if hasattr(p, "__dict__") else
                                                      {f: getattr(p, f) for f in p.__slots__} for p in problems]})
    else:
        for problem in problems:
            style = "red" if problem.severity == "error" else "yellow"
            console.print(str(problem), style=style, markup=False, highlight=False, soft_wrap=True)
        console.print(f"{len(files)} file(s): " + ("[green]valid[/]" if not errors else
                                                   f"[red]{len(errors)} error(s)[/]"), highlight=False)
    raise typer.Exit(EXIT_OK if not errors else EXIT_BAD_INPUT)


def _abbrev(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width // 2 - 1] + "…" + text[-(width // 2 - 1):]


def render_decision(decision: Decision) -> None:
    table = Table(title=f"policy {decision.policy_name} ({decision.policy_digest[:12]}…)")
    for column in ("check", "expected", "actual", "result"):
        table.add_column(column, overflow="fold")
    for c in decision.checks:
        result = "[green]pass[/]" + (" [dim](waived)[/]" if c.waived else "") if c.passed else "[red]FAIL[/]"
        table.add_row(c.code, _abbrev(c.expected), _abbrev(c.actual), f"{result} [dim]{c.message}[/]")
    console.print(table)
    if decision.allowed:
        console.print(f"[bold green]ALLOW[/] by platform alternative {decision.platform}", highlight=False)
    else:
        console.print(f"[bold red]DENY[/]: {decision.reason.code if decision.reason else 'no platform'}"
                      f" (closest alternative: {decision.closest})", highlight=False)


@app.command("test")
def test_cmd(policy: Annotated[Path, typer.Argument(help="Policy file.")],
             evidence: Annotated[Optional[Path], typer.Option(help="Evidence to verify, then evaluate.")] = None,
             claims: Annotated[Optional[Path], typer.Option(help="Claims JSON (from `veil attest verify --json`).")] = None,
             resource: Annotated[Optional[str], typer.Option(help="Resource asked for, e.g. models/m/dek.")] = None,
             refs: Refs = [], tee: TeeOpt = TeeChoice.auto, collateral: CollateralOpt = [], certs: CertsOpt = [],
             at: AtOpt = None, no_revocation: NoRevocation = False, offline: OfflineOpt = False,
             emulated_anchors: EmulatedOpt = None, allow_debug: AllowDebugOpt = False, json_out: JsonOut = False) -> None:
    """Evaluate a policy against evidence or claims: exit 0 allow, 1 deny, 2 bad input."""
    if (evidence is None) == (claims is None):
        fail("give exactly one of --evidence and --claims")
    compiled = _load(policy, refs)
    moment = parse_time(at)
    if evidence is not None:
        result = _verify(evidence, tee, collateral, certs, moment, no_revocation, offline, emulated_anchors,
                         allow_debug)
        found, errors = result.claims if result.verified else None, [_failure_line(e) for e in result.errors]
    else:
        found, errors = _read_claims(claims)
    if found is None:
        if json_out:
            print_json({"allowed": False, "decision": "deny", "verified": False, "errors": errors})
        else:
            console.print("[bold red]DENY[/]: the evidence did not verify", highlight=False)
            for error in errors:
                console.print(f"  [red]✗[/] {error}", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    decision = evaluate(compiled, found, at=moment, resource=resource)
    if json_out:
        print_json({"verified": True, **decision.to_dict()})
    else:
        render_decision(decision)
    raise typer.Exit(EXIT_OK if decision.allowed else EXIT_FAILED)


def _policy_name(name: str | None, out: Path) -> str:
    """--name, or the stem of --out (`my-policy.yaml` -> `my-policy`); exit 2 if it is no valid name."""
    chosen = name if name is not None else out.stem
    try:
        return check_name(chosen, "a name")
    except ValueError as exc:
        hint = "pass a valid --name" if name is not None else "pass --name, or an --out file named like my-policy.yaml"
        fail(f"policy name {chosen!r} is not valid ({exc}); {hint}")


@app.command("from-evidence")
def from_evidence_cmd(evidence: Annotated[Path, typer.Argument(help="Evidence to pin.")],
                      out: Annotated[Path, typer.Option(help="Where to write the policy YAML.")],
                      name: Annotated[Optional[str], typer.Option(
                          help="metadata.name of the policy (default: the --out file's name without .yaml).")] = None,
                      resource: Annotated[list[str], typer.Option(help="Resource pattern (repeatable).")] = [],
                      force: Annotated[bool, typer.Option(help="Overwrite an existing --out file.")] = False,
                      tee: TeeOpt = TeeChoice.auto, collateral: CollateralOpt = [], certs: CertsOpt = [],
                      at: AtOpt = None, no_revocation: NoRevocation = False, offline: OfflineOpt = False,
                      emulated_anchors: EmulatedOpt = None, allow_debug: AllowDebugOpt = False) -> None:
    """Write a commented policy pinning what verified evidence shows, for review."""
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    name = _policy_name(name, out)
    patterns = resource or ["models/*/dek"]
    for pattern in patterns:
        try:
            check_pattern(pattern)
        except ValueError as exc:
            fail(str(exc))
    moment = parse_time(at)
    result = _verify(evidence, tee, collateral, certs, moment, no_revocation, offline, emulated_anchors, allow_debug)
    if not result.verified or result.claims is None:
        for error in result.errors:
            err_console.print(f"  ✗ {_failure_line(error)}", highlight=False, markup=False)
        fail("the evidence did not verify: no policy written", code=EXIT_FAILED)
    text = policy_from_claims(result.claims, name=name, resources=patterns, evidence=evidence.name, at=moment)
    atomic_write(out, text.encode("utf-8"))
    console.print(f"wrote {out}: review it, then `veil policy lint {out}`", highlight=False)
    raise typer.Exit(EXIT_OK)


def _export_records(source: Path) -> list[tuple[int, AttestationRecord]]:
    """(seq, record) for each release or denial with verified claims in a `veil audit` export: its directory
    or its entries.jsonl.

    Denials without claims (evidence that did not verify, protocol errors) are left out: no policy can
    change them. Run `veil audit verify` on the export first; this reads it, it does not verify it."""
    from keybroker.audit.export import load_export, parse_entries, read_lines

    try:
        entries = parse_entries(load_export(source).lines if source.is_dir() else read_lines(source))
    except (OSError, ValueError) as exc:
        fail(f"{source}: {getattr(exc, 'strerror', None) or exc}")
    records = []
    for entry in entries:
        if entry is None or entry.kind not in ("release", "denial") or entry.claims is None or not entry.resource:
            continue
        try:
            records.append((entry.seq, AttestationRecord(
                time=entry.time, resource=entry.resource, tee=entry.claims["tee"], verified=True,
                claims=Claims.model_validate(entry.claims), evidence_sha256=entry.evidence_digest or "0" * 64,
                decision=entry.decision, reasons=tuple(r.code for r in entry.reasons),
                policy_name=entry.policy_id or "", policy_digest=entry.policy_digest or "0" * 64)))
        except (KeyError, TypeError, ValidationError) as exc:
            fail(f"{source}: entry {entry.seq} does not hold replayable claims: {exc}")
    return records


LOG_TAKES = ("a `veil audit` export (its directory or its entries.jsonl), or attestation records as JSON lines "
             "(`policies.replay.AttestationRecord`)")


def _is_log_entries(path: Path) -> bool:
    """Whether a JSON-lines file holds broker log entries (the export's entries.jsonl), not records."""
    try:
        with path.open("rb") as handle:
            first = next((line for line in handle if line.strip()), b"")
        doc = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "kind" in doc and "seq" in doc


def _replay_source(log: Path) -> tuple[str, list[tuple[int, AttestationRecord]]]:
    """("seq", records) from an export, ("line", records) from attestation records; exits 2 otherwise."""
    if not log.exists():
        fail(f"--log {log}: no such file or directory; give {LOG_TAKES}")
    if log.is_dir() or _is_log_entries(log):
        return "seq", _export_records(log)
    try:
        return "line", list(read_log(log))
    except PolicyLoadError as exc:
        fail(f"{exc.problems[0]}; --log takes {LOG_TAKES}")


def _word(decision: Decision | None) -> str:
    return "allow" if decision and decision.allowed else "deny"


@app.command("diff")
def diff_cmd(old: Annotated[Path, typer.Argument(help="Current policy.")],
             new: Annotated[Path, typer.Argument(help="Proposed policy.")],
             log: Annotated[Path, typer.Option(help="A `veil audit` export (its directory or its entries.jsonl: "
                                                  "its releases and denials), or attestation records (JSON "
                                                  "lines).")],
             refs: Refs = [], json_out: JsonOut = False) -> None:
    """Replay recorded attestations under OLD and NEW: exit 0 no decision changes, 1 some change, 2 bad input."""
    before, after = _load(old, refs), _load(new, refs)
    where, records = _replay_source(log)
    try:
        changes = diff(before, after, records)
    except PolicyLoadError as exc:
        fail(str(exc.problems[0]))
    if json_out:
        print_json({"changes": [{where: c.line, "time": c.record.time, "resource": c.record.resource,
                                 "recorded": c.record.decision, "old": _word(c.old), "new": _word(c.new),
                                 "change": c.summary, "old_reasons": [x.code for x in c.old.failures] if c.old else [],
                                 "new_reasons": [x.code for x in c.new.failures] if c.new else []}
                                for c in changes]})
    else:
        table = Table(title=f"{len(changes)} decision(s) would change")
        for column in (where, "time", "resource", "recorded", "old policy", "new policy", "why"):
            table.add_column(column, overflow="fold")
        for c in changes:
            deciding = c.new if c.new and not c.new.allowed else c.old
            why = deciding.reason.code if deciding and deciding.reason else "-"
            table.add_row(str(c.line), c.record.time.isoformat(), c.record.resource or "-", c.record.decision,
                          _word(c.old), _word(c.new), why)
        console.print(table)
    raise typer.Exit(EXIT_OK if not changes else EXIT_FAILED)
