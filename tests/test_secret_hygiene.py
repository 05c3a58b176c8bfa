"""The secret-hygiene invariant (no secret on disk, in env, argv or logs), checked end to end without vLLM: after sealing, verifying and loading a model
through the key agent, no file written, no log line, no environment and no argv of any process contains
the data key (raw, hex or base64) or any sampled 64-byte window of the plaintext weights.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enclave.keyagent import is_descendant

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_SIZE = 3 * 1024 * 1024 + 12345          # several chunks, not chunk-aligned
WINDOWS = 200

# The "enclave process": reads the released key, serves it on a key agent to one loader child, and waits
# for the loader's report. argv carries only paths and the agent's (non-secret) name.
ENCLAVE = r"""
import subprocess, sys
from pathlib import Path
from enclave.keyagent import KeyAgent
from enclave.secrets import DataKey
key = DataKey(Path(sys.argv[1]).read_bytes())
with KeyAgent(key, uses=1) as agent:
    key.wipe()
    loader = subprocess.Popen([sys.executable, "-c", sys.argv[3], agent.name, sys.argv[2]])
    rc = loader.wait()
    print(f"enclave: loader rc={rc} served={agent.served} reports={agent.reports}", flush=True)
sys.exit(rc)
"""

# The "loader worker": fetches the key from the agent, decrypts every file into memory, says so, and holds
# the plaintext until the test has scanned every process (it waits on stdin).
LOADER = r"""
import hashlib, sys
from enclave.keyagent import fetch_key, report
from enclave.sealing import open_sealed
name, sealed = sys.argv[1], sys.argv[2]
key = fetch_key(name)
model = open_sealed(sealed, key)
buffers = dict(model.read_all())
key.wipe()
digests = {n: hashlib.sha256(b.view).hexdigest() for n, b in buffers.items()}
report(name, "ok")
print("loaded " + " ".join(f"{n}={d}" for n, d in sorted(digests.items())), flush=True)
sys.stdin.readline()
for b in buffers.values():
    b.close()
"""


def _forms(key: bytes) -> list[bytes]:
    forms = [key, key.hex().encode(), key.hex().upper().encode()]
    for enc in (base64.b64encode, base64.urlsafe_b64encode, base64.b32encode):
        text = enc(key)
        forms += [text, text.rstrip(b"=")]
    return forms


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _proc_read(pid: int, what: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{what}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _our_processes() -> list[int]:
    me = os.getpid()
    pids = [me]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me and is_descendant(int(entry), me):
            pids.append(int(entry))
    return pids


def test_no_key_or_plaintext_leaks_anywhere(tmp_path: Path):
    rng = random.Random(os.urandom(16))
    plaintext = os.urandom(WEIGHTS_SIZE)
    source = tmp_path / "source-model"                  # the input: plaintext by definition, not scanned
    source.mkdir()
    (source / "model.safetensors").write_bytes(plaintext)
    (source / "config.json").write_text('{"model_type": "llama"}')
    work = tmp_path / "work"                            # everything written by Veil lands here
    (work / "tmp").mkdir(parents=True)
    (work / "home").mkdir()
    sealed, key_file = work / "sealed", work / "model.key"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(work / "tmp"), "HOME": str(work / "home"),
           "VEIL_HOME": str(work / "home" / "veil"), "COLUMNS": "200"}
    shm = Path("/dev/shm")
    shm_before = {p.name for p in shm.iterdir()} if shm.is_dir() else set()
    started = time.time()
    veil = [sys.executable, "-m", "veil.cli.main"]
    outputs: list[bytes] = []
    argvs: list[list[str]] = []

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        argvs.append(argv)
        done = subprocess.run(argv, capture_output=True, env=env, cwd=work, timeout=60)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done

    run([*veil, "model", "seal", str(source), str(sealed), "--key-out", str(key_file), "--name", "hygiene"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    assert len(key) == 32
    run([*veil, "model", "verify", str(sealed), "--key-file", str(key_file)])

    # Load through the key agent; scan every process of ours while the plaintext is held in memory.
    proc_blobs: list[tuple[str, bytes]] = []
    argvs.append([sys.executable, "-c", ENCLAVE, str(key_file), str(sealed), LOADER])
    enclave = subprocess.Popen(argvs[-1], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, cwd=work)
    try:
        line = enclave.stdout.readline()
        outputs.append(line)
        if not line.startswith(b"loaded "):             # closing stdin lets a waiting loader exit too
            out, err = enclave.communicate(b"", timeout=60)
            pytest.fail(f"loading failed: {line!r} {out!r} {err.decode(errors='replace')}")
        digest = hashlib.sha256(plaintext).hexdigest()
        assert f"model.safetensors={digest}".encode() in line            # the loader really holds the weights
        pids = _our_processes()
        assert len(pids) >= 3                                              # pytest, enclave, loader
        for pid in pids:
            for what in ("cmdline", "environ"):
                proc_blobs.append((f"/proc/{pid}/{what}", _proc_read(pid, what)))
        out, err = enclave.communicate(b"\n", timeout=60)
    finally:
        if enclave.poll() is None:
            for pid in _our_processes()[1:]:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            enclave.wait()
    outputs += [out, err]
    assert enclave.returncode == 0, err.decode(errors="replace")
    assert b"served=1 reports=['ok']" in out

    # Everything to scan.
    haystacks: list[tuple[str, bytes]] = [(f"output {i}", o) for i, o in enumerate(outputs)]
    haystacks += proc_blobs
    haystacks.append(("os.environ", "\0".join(f"{k}={v}" for k, v in os.environ.items()).encode()))
    haystacks += [(f"argv {a[:4]}", "\0".join(a).encode()) for a in argvs]
    written = [p for p in _files(work) if p != key_file]
    assert any(p.parent == sealed for p in written)                         # the scan does see the sealed files
    if shm.is_dir():
        written += [p for name in {q.name for q in shm.iterdir()} - shm_before
                    for p in ([shm / name] if (shm / name).is_file() else _files(shm / name))
                    if p.stat().st_mtime >= started - 1]
    for path in written:
        try:
            haystacks.append((str(path), path.read_bytes()))
        except PermissionError:
            pass

    needles = [(f"key form {i}", form) for i, form in enumerate(_forms(key))]
    for _ in range(WINDOWS):
        offset = rng.randrange(0, WEIGHTS_SIZE - 64)
        needles.append((f"plaintext[{offset}:{offset + 64}]", plaintext[offset:offset + 64]))
    needles.append(("plaintext head", plaintext[:64]))
    needles.append(("plaintext tail", plaintext[-64:]))

    leaks = [f"{needle_name} in {where}" for where, blob in haystacks for needle_name, needle in needles
             if needle in blob]
    assert not leaks, leaks[:10]
    # Sanity: the scan would have caught a leak.
    assert key in key_file.read_bytes() and plaintext[:64] in (source / "model.safetensors").read_bytes()

