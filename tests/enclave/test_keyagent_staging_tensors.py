"""Key hand-off, tmpfs staging and the in-memory safetensors parser (no vLLM needed)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.errors import KeyAgentError, UnsealError
from enclave.keyagent import KeyAgent, fetch_key, is_descendant
from enclave.secrets import DataKey, SecureBuffer
from enclave.sealing import open_sealed, seal_model
from enclave.staging import staged_config

REPO = Path(__file__).resolve().parents[2]
CHILD = ("import hashlib, sys\nfrom enclave.keyagent import fetch_key\n"
         "print(hashlib.sha256(fetch_key(sys.argv[1]).bytes()).hexdigest())")


def run_child(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_key_is_served_to_a_descendant_once_and_never_in_argv_or_env():
    key = DataKey.generate()
    with KeyAgent(key, uses=1) as agent:
        first = run_child(agent.name)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == hashlib.sha256(key.bytes()).hexdigest()
        second = run_child(agent.name)                      # bounded: the key was already served
        assert second.returncode != 0 and "refused the key" in second.stderr
        assert key.bytes().hex() not in agent.name
        assert agent.served == 1


def test_a_process_that_is_not_a_descendant_gets_nothing():
    with KeyAgent(DataKey.generate(), uses=3) as agent:
        with pytest.raises(KeyAgentError, match="refused"):
            fetch_key(agent.name)                            # this process is the agent's, not its child
        assert agent.refused and agent.refused[0][0] == os.getpid()
        assert agent.served == 0


def test_descendant_check_walks_the_parent_chain():
    assert is_descendant(os.getpid(), os.getppid())
    assert not is_descendant(os.getppid(), os.getpid())
    assert not is_descendant(os.getpid(), os.getpid())


def test_closed_agent_is_unreachable():
    agent = KeyAgent(DataKey.generate())
    agent.close()
    with pytest.raises(KeyAgentError, match="cannot be reached"):
        fetch_key(agent.name)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    src = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    tensors = {"a.weight": torch.randn(3, 5), "b.bias": torch.arange(7, dtype=torch.int64),
               "c": torch.randn(2, 2).to(torch.bfloat16)}
    save_file(tensors, str(src / "model.safetensors"))
    (src / "config.json").write_text('{"model_type": "llama"}')
    (src / "tokenizer.json").write_text("{}")
    key = DataKey.generate()
    out = tmp_path_factory.mktemp("sealed") / "m"
    seal_model(src, out, key)
    return out, key, tensors


def test_staging_writes_only_non_weight_files_private_and_removes_them(sealed):
    out, key, _ = sealed
    model = open_sealed(out, key)
    with staged_config(model) as directory:
        assert str(directory).startswith("/dev/shm/")
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert sorted(p.name for p in directory.iterdir()) == ["config.json", "tokenizer.json"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in directory.iterdir())
    assert not directory.exists()


def test_in_memory_safetensors_round_trip_is_zero_copy(sealed):
    import ctypes

    from enclave.tensors import iter_tensors

    out, key, tensors = sealed
    with open_sealed(out, key).read("model.safetensors") as buffer:
        parsed = dict(iter_tensors(buffer.view, "model.safetensors"))
        assert parsed.keys() == tensors.keys()
        for name, tensor in tensors.items():
            assert parsed[name].dtype == tensor.dtype and parsed[name].equal(tensor)
        base = ctypes.addressof(ctypes.c_char.from_buffer(buffer._map))
        assert all(base <= t.data_ptr() < base + buffer.size for t in parsed.values())
        del parsed


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:4], "shorter than"),
    (lambda b: (10**9).to_bytes(8, "little") + b[8:], "exceeds the file"),
    (lambda b: b[:8] + b"[" + b[9:], "not JSON"),
    (lambda b: b[:-8], "outside the file or of the wrong size"),
])
def test_malformed_safetensors_is_a_clear_error(sealed, mutate, message):
    from enclave.tensors import iter_tensors

    out, key, _ = sealed
    with open_sealed(out, key).read("model.safetensors") as buffer:
        data = mutate(bytes(buffer.view))
    broken = SecureBuffer(len(data))
    broken.view[:] = data
    with pytest.raises(UnsealError, match=message):
        list(iter_tensors(broken.view, "model.safetensors"))
    broken.close()
