"""Sealed weights: round trip, and each attack on the format fails with a clear error."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enclave.errors import SealingError, UnsealError
from enclave.sealing import open_sealed, seal_model, verify_sealed
from enclave.sealing.format import HEADER_SIZE, TAG_SIZE
from enclave.secrets import DataKey
from veil.cli.main import app

CHUNK = 1024


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(os.urandom(5 * CHUNK + 123))
    (root / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (root / "tokenizer" / "tokenizer.json").write_bytes(os.urandom(3 * CHUNK))   # exact multiple
    (root / "empty.txt").write_bytes(b"")
    return root


@pytest.fixture()
def sealed(model: Path, tmp_path: Path) -> tuple[Path, DataKey]:
    key = DataKey.generate()
    seal_model(model, tmp_path / "sealed", key, chunk_size=CHUNK, workers=2)
    return tmp_path / "sealed", key


def blob_of(sealed_dir: Path, key: DataKey, name: str) -> Path:
    return sealed_dir / open_sealed(sealed_dir, key).manifest.file(name).blob


def read_all(sealed_dir: Path, key: DataKey) -> None:
    for _, buffer in open_sealed(sealed_dir, key).read_all():
        buffer.close()


def test_round_trip_restores_every_file_exactly(model, sealed):
    sealed_dir, key = sealed
    opened = open_sealed(sealed_dir, key)
    assert sorted(opened.names) == ["config.json", "empty.txt", "model.safetensors", "tokenizer/tokenizer.json"]
    for name in opened.names:
        with opened.read(name) as buffer:
            assert bytes(buffer.view) == (model / name).read_bytes()


def test_sealed_files_hold_no_plaintext(model, sealed):
    sealed_dir, _ = sealed
    plaintext = (model / "model.safetensors").read_bytes()
    for blob in sealed_dir.iterdir():
        data = blob.read_bytes()
        assert plaintext[1000:1064] not in data
        assert b"LlamaForCausalLM" not in data and b"model.safetensors" not in data


def test_wrong_key_fails_at_the_manifest(sealed):
    sealed_dir, _ = sealed
    with pytest.raises(UnsealError, match="does not authenticate"):
        open_sealed(sealed_dir, DataKey.generate())


def test_tampered_chunk_names_file_and_chunk(sealed):
    sealed_dir, key = sealed
    blob = blob_of(sealed_dir, key, "model.safetensors")
    data = bytearray(blob.read_bytes())
    data[HEADER_SIZE + 2 * (CHUNK + TAG_SIZE) + 7] ^= 1          # a byte of chunk 2
    blob.write_bytes(bytes(data))
    with pytest.raises(UnsealError) as info:
        read_all(sealed_dir, key)
    assert info.value.file == "model.safetensors" and info.value.chunk == 2


def test_swapped_chunks_fail(sealed):
    sealed_dir, key = sealed
    blob = blob_of(sealed_dir, key, "model.safetensors")
    data = blob.read_bytes()
    size = CHUNK + TAG_SIZE
    first, second = data[HEADER_SIZE:HEADER_SIZE + size], data[HEADER_SIZE + size:HEADER_SIZE + 2 * size]
    blob.write_bytes(data[:HEADER_SIZE] + second + first + data[HEADER_SIZE + 2 * size:])
    with pytest.raises(UnsealError) as info:
        verify_sealed(sealed_dir, key)
    assert info.value.chunk in (0, 1)


def test_swapped_files_fail(sealed):
    sealed_dir, key = sealed
    a = blob_of(sealed_dir, key, "config.json")
    b = blob_of(sealed_dir, key, "empty.txt")
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    with pytest.raises(UnsealError, match="another file"):
        verify_sealed(sealed_dir, key)


@pytest.mark.parametrize("cut", [1, TAG_SIZE, 123 + TAG_SIZE, 123 + TAG_SIZE + 1])
def test_truncated_file_fails(sealed, cut):
    sealed_dir, key = sealed
    blob = blob_of(sealed_dir, key, "model.safetensors")
    blob.write_bytes(blob.read_bytes()[:-cut])
    with pytest.raises(UnsealError, match="truncated"):
        verify_sealed(sealed_dir, key)


def test_dropping_the_last_chunk_and_rewriting_the_header_fails(sealed):
    """An attacker who also edits the header's size and count still cannot pass: the header is in the AAD."""
    sealed_dir, key = sealed
    blob = blob_of(sealed_dir, key, "tokenizer/tokenizer.json")
    data = bytearray(blob.read_bytes())
    data[40:48] = (2 * CHUNK).to_bytes(8, "big")                  # plaintext size
    data[48:56] = (2).to_bytes(8, "big")                          # chunk count
    blob.write_bytes(bytes(data[:HEADER_SIZE + 2 * (CHUNK + TAG_SIZE)]))
    with pytest.raises(UnsealError):
        verify_sealed(sealed_dir, key)


def test_tampered_manifest_fails(sealed):
    sealed_dir, key = sealed
    manifest = sealed_dir / "manifest.veil"
    data = bytearray(manifest.read_bytes())
    data[-20] ^= 1
    manifest.write_bytes(bytes(data))
    with pytest.raises(UnsealError, match="manifest"):
        open_sealed(sealed_dir, key)


def test_seal_refuses_a_non_empty_output_and_writes_nothing_on_error(model, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("keep")
    with pytest.raises(SealingError, match="not empty"):
        seal_model(model, out, DataKey.generate())
    assert sorted(p.name for p in out.iterdir()) == ["x"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".busy.")]


def test_seal_refuses_symlinks_leaving_the_model(model, tmp_path):
    (tmp_path / "secret").write_text("outside")
    (model / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(SealingError, match="symlink"):
        seal_model(model, tmp_path / "out", DataKey.generate())


def test_data_key_never_shows_itself():
    key = DataKey.generate()
    assert key.bytes().hex() not in repr(key) and "redacted" in str(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    key.wipe()
    with pytest.raises(ValueError, match="wiped"):
        key.bytes()


def test_cli_seal_and_verify(model, tmp_path):
    runner = CliRunner()
    key_file, out = tmp_path / "model.key", tmp_path / "sealed"
    result = runner.invoke(app, ["model", "seal", str(model), str(out), "--key-out", str(key_file)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    assert key_file.read_bytes().hex() not in result.output
    assert runner.invoke(app, ["model", "verify", str(out), "--key-file", str(key_file)]).exit_code == 0
    again = runner.invoke(app, ["model", "seal", str(model), str(tmp_path / "o2"), "--key-out", str(key_file)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    blob = next(p for p in out.iterdir() if p.suffix == ".vsf" and p.stat().st_size > 3000)
    blob.write_bytes(blob.read_bytes()[:-1])
    bad = runner.invoke(app, ["model", "verify", str(out), "--key-file", str(key_file)])
    assert bad.exit_code == 1 and "truncated" in bad.output


def test_a_failed_verify_leaves_no_progress_bar(model, tmp_path, monkeypatch):
    from io import StringIO

    from rich.console import Console

    from veil.cli import model as model_cli

    runner = CliRunner()
    key_file, out = tmp_path / "model.key", tmp_path / "sealed"
    assert runner.invoke(app, ["model", "seal", str(model), str(out), "--key-out", str(key_file)]).exit_code == 0
    blob = next(p for p in out.iterdir() if p.suffix == ".vsf" and p.stat().st_size > 3000)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    bad = runner.invoke(app, ["model", "verify", str(out), "--key-file", str(key_file)])
    assert bad.exit_code == 1 and "does not authenticate" in bad.output
    assert "verifying" not in bad.output and "MB" not in bad.output          # no bar when not a terminal
    monkeypatch.setattr(model_cli, "console", Console(file=StringIO(), force_terminal=True))
    bar = model_cli._progress()
    assert bar.live.transient and not bar.disable                            # on a terminal: cleared at the end
