"""The second half of `veil demo`: Veil's main job on the embedded default.

A tiny model is built and sealed; a real key broker (SQLite) is started trusting
the demo's emulated vendor; the development policy is pushed and the model's data
key imported and bound to it; a real enclave process (emulated TDX, real vLLM on
CPU) attests to the broker, fetches the key and serves the model over attested
TLS; the attested client talks to it, and a production policy makes the client
refuse; finally the broker's attestation log is exported and verified offline.

Every process started here is in its own process group and is asked to stop
(SIGTERM) on the way out, whatever happens, Ctrl-C included; only a process still
there after a grace period is killed, and the demo says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx

from rich.table import Table

from .demo_procs import FlowFailed, Proc, console, examples_dir, free_port, veil_cmd

RESOURCE = "dev/tiny/dek"
POLICY_NAME = "development-emulated"
PROMPT = "Confidential computing"
BROKER_READY_S = 60
ENCLAVE_READY_S = 420
WIDE = 1000                   # COLUMNS for the CLI commands run here: whole lines, wrapped by echo()


def echo(lines: list[str] | str) -> None:
    """Quote another command's output, each line wrapped to this console, continuations indented."""
    width = max(console.width - 6, 20)
    for line in lines.splitlines() if isinstance(lines, str) else lines:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        for part in textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False) or [""]:
            console.print("    | " + part, highlight=False, markup=False)


def log_table(entries: list[dict]) -> Table:
    """The exported log in five columns that fit 80 (`veil audit show` has every field)."""
    table = Table(title="the broker's attestation log (veil audit show --json, summarised)", title_justify="left")
    for column in ("seq", "time", "kind", "resource", "decision / action"):
        table.add_column(column, overflow="fold")
    for e in entries:
        if e.get("kind") == "calls":
            what = f"call records {e['calls'].get('first_seq')}–{e['calls'].get('last_seq')}"
        elif e.get("kind") == "admin":
            what = f"{e.get('actor')}: {e.get('action')}"
        else:
            what = " ".join(filter(None, (e.get("decision"), e.get("action"))))
            what += f" (policy {e['policy_id']})" if e.get("policy_id") else ""
        table.add_row(str(e.get("seq")), str(e.get("time", ""))[11:19], e.get("kind", ""), e.get("resource") or "",
                      what)
    return table


class Flow:
    def __init__(self, workdir: Path, vendor, stack: ExitStack) -> None:
        self.w = workdir
        self.vendor = vendor
        self.stack = stack
        self.examples = examples_dir(stack)
        self.procs: list[Proc] = []
        # the CLI run here prints whole lines (never wrapped at its own width); echo() wraps them for this console
        self.env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
                                 "COLUMNS": str(WIDE)}
        self.timings: list[tuple[str, float]] = []
        self.endings: dict[str, str] = {}

    # ---- plumbing -------------------------------------------------------------------------------
    def step(self, n: int, title: str, proves: str, fn: Callable[[], str]) -> None:
        console.print(f"[bold]{n}. {title}[/]")
        start = time.monotonic()
        outcome = fn()
        took = time.monotonic() - start
        self.timings.append((title, took))
        console.print(f"  [green]✓[/] {outcome} [dim]({took:.1f}s)[/]\n    [dim]proves: {proves}[/]",
                      highlight=False)

    def veil(self, *args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.Popen(veil_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env, cwd=self.w, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if ok and result.returncode != 0:
            raise FlowFailed(f"`veil {' '.join(args)}` exited {result.returncode}:\n{out[-2000:]}{err[-3000:]}")
        return result

    def start(self, name: str, *args: str) -> Proc:
        proc = Proc(name, veil_cmd(*args), self.w / f"{name}.log", env=self.env, cwd=self.w)
        self.procs.append(proc)
        return proc

    def shutdown(self) -> list[int]:
        """Stop every process started here; the ids of process groups that still exist afterwards."""
        left = []
        for proc in reversed(self.procs):
            if proc.alive():
                console.print(f"  stopping {proc.name} (pid {proc.proc.pid}, SIGTERM)")
            self.endings[proc.name] = proc.stop()
            deadline = time.monotonic() + 10     # killed members may take a moment to be reaped
            while True:
                try:
                    os.killpg(proc.proc.pid, 0)
                except ProcessLookupError:
                    break
                if time.monotonic() > deadline:
                    left.append(proc.proc.pid)
                    break
                time.sleep(0.2)
        self.procs.clear()
        return left

    # ---- the steps ----------------------------------------------------------------------------
    def build_model(self) -> str:
        from enclave.testmodel import build_test_model
        self.model = build_test_model(self.w / "model", size="tiny")
        files = sorted(p.name for p in self.model.iterdir())
        size = sum(p.stat().st_size for p in self.model.iterdir() if p.is_file())
        return f"{self.model} ({len(files)} files, {size / 1e6:.1f} MB: {', '.join(files)})"

    def seal(self) -> str:
        self.sealed, self.keyfile = self.w / "sealed", self.w / "model.key"
        self.veil("model", "seal", str(self.model), str(self.sealed), "--key-out", str(self.keyfile),
                  "--name", "tiny")
        mode = oct(self.keyfile.stat().st_mode & 0o777)
        names = sorted(p.name for p in self.sealed.iterdir())
        plain = [p.name for p in self.model.iterdir() if (self.sealed / p.name).exists()
                 and (self.sealed / p.name).read_bytes() == p.read_bytes()]
        if plain:
            raise FlowFailed(f"sealed directory holds plaintext copies: {plain}")
        return (f"{self.sealed} ({', '.join(names)}); 256-bit data key in {self.keyfile.name} (mode {mode}); "
                "no file of the sealed model equals its plaintext")

    def broker(self) -> str:
        from attestation.collateral.bundle import BundleWriter
        self.anchors = self.vendor.export_anchors(self.w / "trust" / "anchors")
        bundle = self.w / "trust" / "bundle"
        with BundleWriter(bundle) as writer:
            writer.add_tdx(self.vendor.tdx_collateral(at=datetime.now(timezone.utc)))
        db = f"sqlite:///{self.w / 'broker.db'}"
        self.admin_key = self.w / "admin.key"
        self.veil("broker", "init", "--db", db, "--key-out", str(self.admin_key))
        port = free_port()
        self.broker_url = f"http://127.0.0.1:{port}"
        console.print("  [bold yellow]WARNING: this broker is started with --allow-emulated: it trusts the "
                      "demo's locally generated emulated vendor root. Development only — never in production.[/]")
        proc = self.start("broker", "broker", "serve", "--db", db, "--host", "127.0.0.1", "--port", str(port),
                          "--allow-emulated", "--emulated-anchors", str(self.anchors), "--collateral", str(bundle))
        deadline = time.monotonic() + BROKER_READY_S
        while True:
            if not proc.alive():
                time.sleep(0.3)
                raise FlowFailed(f"broker exited ({proc.proc.returncode}):\n{proc.tail()}")
            try:
                if httpx.get(self.broker_url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise FlowFailed(f"broker not ready in {BROKER_READY_S}s:\n{proc.tail()}")
            time.sleep(0.2)
        return (f"broker on {self.broker_url} (SQLite {self.w / 'broker.db'}, pid {proc.proc.pid}), /readyz OK; "
                f"emulated anchors {self.anchors}, offline collateral bundle {bundle}")

    def policy_and_key(self) -> str:
        from keybroker.admin.client import AdminClient
        self.admin = AdminClient(self.broker_url, self.admin_key)
        text = (self.examples / "development-emulated.yaml").read_text()
        pushed = self.admin.push_policy(POLICY_NAME, text)
        value = self.keyfile.read_bytes()
        if len(value) != 32:
            raise FlowFailed(f"{self.keyfile} is not a 32-byte data key")
        created = self.admin.create_key(RESOURCE, value=value, policy=POLICY_NAME)
        listed = {k["path"]: k for k in self.admin.list_keys()}
        if listed.get(RESOURCE, {}).get("policy") not in (POLICY_NAME, None):
            raise FlowFailed(f"{RESOURCE} is not bound to {POLICY_NAME}: {listed.get(RESOURCE)}")
        if "value" in json.dumps(listed):
            raise FlowFailed("the broker listed key material")
        digest = str(pushed.get("digest", ""))[:16] if isinstance(pushed, dict) else ""
        version = created.get("version") if isinstance(created, dict) else "?"
        return (f"policy {POLICY_NAME} pushed (digest {digest}…); data key imported as {RESOURCE} "
                f"v{version}, bound to {POLICY_NAME}; key listing carries no key material")

    def enclave(self) -> str:
        proc = self.start("enclave", "enclave", "serve", "--sealed", str(self.sealed),
                          "--broker", self.broker_url, "--resource", RESOURCE,
                          "--emulated", "--tee", "tdx", "--vendor-dir", str(self.vendor_dir),
                          "--host", "127.0.0.1", "--port", "0", "--no-client-auth",
                          "--dtype", "float32", "--max-model-len", "256", "--gpu-memory-utilization", "0.1",
                          "--enforce-eager", "--audit-interval", "2", "--broker-certificate")
        console.print(f"  enclave pid {proc.proc.pid} attesting to the broker, then starting vLLM "
                      f"(log {proc.log}; takes a minute)…")
        m = proc.wait_for(r"^serving (\S+) on port (\d+)", ENCLAVE_READY_S)
        self.enclave_port = int(m.group(2))
        released = [e for e in self.log_entries() if e.get("kind") == "release" and e.get("resource") == RESOURCE]
        if not released:
            raise FlowFailed("the enclave is serving but the broker logged no release of " + RESOURCE)
        return (f"{m.group(0)}; the broker logged the release of {RESOURCE} under policy "
                f"{released[-1].get('policy_id')} to emulated TDX evidence")

    def log_entries(self) -> list[dict]:
        data = self.admin.export()
        return [json.loads(item["entry"]) for item in data["entries"]]

    def client(self) -> str:
        ex = self.examples
        common = ["--target", f"127.0.0.1:{self.enclave_port}", "--references", str(ex / "reference-values.yaml"),
                  "--resource", RESOURCE, "--emulated-anchors", str(self.anchors), "--offline",
                  "--prompt", PROMPT]
        good = self.veil("enclave", "client", "--policy", str(ex / "development-emulated.yaml"), *common,
                         "--max-tokens", "16")
        echo(good.stderr.strip())
        completion = good.stdout.strip()
        if not completion:
            raise FlowFailed("the client printed no completion")
        shown = completion if completion.isprintable() else ascii(completion)
        console.print(f"  completion for {PROMPT!r} (the tiny model has random weights, so this is noise; "
                      f"what matters is that it came back over the attested channel):", highlight=False)
        echo([shown])
        bad = self.veil("enclave", "client", "--policy", str(ex / "tdx-production.yaml"), *common, ok=False)
        if bad.returncode == 0:
            raise FlowFailed("the client accepted emulated evidence under the production policy:\n" + bad.stdout)
        console.print("  under policies/examples/tdx-production.yaml (every check the client refused on, "
                      "expected and actual):")
        echo((bad.stdout + bad.stderr).strip())
        ca = self.w / "enclave-ca.pem"
        ca.write_text(httpx.get(self.broker_url + "/kbs/v0/enclave-ca", timeout=10).text)
        via_ca = self.veil("enclave", "client", "--target", f"127.0.0.1:{self.enclave_port}", "--broker-ca", str(ca),
                           "--prompt", PROMPT, "--max-tokens", "8")
        if not via_ca.stdout.strip():
            raise FlowFailed("no completion through the broker-issued certificate")
        stranger = self.w / "stranger-ca.pem"
        stranger.write_text((self.anchors / "intel" / "root_ca.pem").read_text())
        refused = self.veil("enclave", "client", "--target", f"127.0.0.1:{self.enclave_port}", "--broker-ca",
                            str(stranger), "--prompt", PROMPT, ok=False)
        if refused.returncode == 0:
            raise FlowFailed("a client trusting another CA accepted the enclave's certificate")
        console.print("  with the broker's enclave CA as the only TLS root (no evidence checked by the client): "
                      "completion received; with another CA: refused before the prompt")
        return (f"completion received after attestation under the development policy; the production policy "
                f"made the client refuse (exit {bad.returncode}) before sending the prompt; the broker-issued "
                f"certificate served clients that trust only the broker's CA")

    def shipped_calls(self, timeout_s: float = 20.0) -> int:
        """Call records the enclave has shipped into the broker's log (it ships every 2 s here)."""
        deadline = time.monotonic() + timeout_s
        while True:
            batches = [e["calls"] for e in self.log_entries() if e.get("kind") == "calls"]
            if batches or time.monotonic() > deadline:
                return sum(len(b["entries"]) for b in batches)
            time.sleep(0.5)

    def audit(self) -> str:
        calls = self.shipped_calls()
        if not calls:
            raise FlowFailed("the enclave's per-call audit never reached the broker's log")
        console.print(f"  the enclave shipped {calls} signed call record(s) (counts and status, no text) into the log")
        from keybroker.audit.export import write_broker_export

        out = self.w / "audit-export"
        write_broker_export(self.admin.export(), out)
        entries = (out / "entries.jsonl").read_bytes().splitlines()
        verified = self.veil("audit", "verify", str(out))
        echo((verified.stdout + verified.stderr).strip())
        shown = self.veil("audit", "show", "--json", str(out))
        console.print(log_table(json.loads(shown.stdout)["entries"]))
        kinds: dict[str, int] = {}
        for e in entries:
            k = json.loads(e).get("kind", "?")
            kinds[k] = kinds.get(k, 0) + 1
        return (f"{len(entries)} entries ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}) exported "
                f"to {out}; `veil audit verify` and `veil audit show` succeeded")


def shutdown_summary(endings: dict[str, str]) -> str:
    """One line on how the processes ended: on SIGTERM (graceful), on their own, or killed."""
    killed = [name for name, how in endings.items() if how == "killed"]
    exited = [name for name, how in endings.items() if how == "exited"]
    stopped = [name for name, how in endings.items() if how == "stopped"]
    parts = []
    if stopped:
        parts.append(f"{' and '.join(stopped)} shut down gracefully on SIGTERM")
    if exited:
        parts.append(f"{' and '.join(exited)} had already exited")
    if killed:
        parts.append(f"{' and '.join(killed)} did not stop within the grace period and had to be killed")
    return "; ".join(parts) + "; no process left" if parts else "no process was running"


def run_flow(workdir: Path, vendor, vendor_dir: Path, first: int = 5) -> list[tuple[str, float]]:
    """Run steps first … first+7; raise FlowFailed on any surprise; always stop every process."""
    def on_term(signum, frame):                  # SIGTERM: unwind like Ctrl-C, so `finally` stops everything
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, on_term) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        return _run_flow(workdir, vendor, vendor_dir, first)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_flow(workdir: Path, vendor, vendor_dir: Path, first: int) -> list[tuple[str, float]]:
    with ExitStack() as stack:
        flow = Flow(workdir, vendor, stack)
        flow.vendor_dir = vendor_dir
        console.print(f"[bold]Veil end to end[/] (working directory {workdir}; SQLite, emulated TDX, "
                      "a tiny locally built model on real vLLM)")
        n = first
        try:
            flow.step(n, "Build a tiny model", "a real Hugging Face-format model exists locally; nothing "
                      "is downloaded", flow.build_model)
            flow.step(n + 1, "Seal the model", "the model at rest is ciphertext; only the 256-bit data key "
                      "can open it", flow.seal)
            flow.step(n + 2, "Start the key broker", "a real broker process (SQLite) is up and trusts the "
                      "emulated anchor only because it was told to", flow.broker)
            flow.step(n + 3, "Push the development policy and import the data key", "the key is held by the "
                      "broker and will be released only to evidence satisfying the bound policy",
                      flow.policy_and_key)
            flow.step(n + 4, "Start the enclave (emulated TDX) fetching its key from the broker",
                      "the enclave attested to the broker, received the key, decrypted the model in memory "
                      "and serves it over TLS bound to its evidence", flow.enclave)
            flow.step(n + 5, "Attested client", "the client verifies the enclave's evidence and TLS-key binding "
                      "against a policy before sending a prompt, and refuses when the policy does not hold",
                      flow.client)
            flow.step(n + 6, "Export and verify the broker's attestation log", "every attestation, release and "
                      "admin action is in an append-only signed log that verifies offline", flow.audit)
        finally:
            console.print(f"[bold]{n + 7}. Shut down[/]")
            leftover = flow.shutdown()
            if leftover:
                raise FlowFailed(f"processes left behind: {leftover}")
            console.print("  [green]✓[/] " + shutdown_summary(flow.endings), highlight=False)
        return flow.timings
