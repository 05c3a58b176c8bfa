"""Checkpoints (C2SP tlog-checkpoint) inside signed notes (C2SP signed-note), Ed25519 only.

A checkpoint body is text, every line ending in "\\n":

    <origin>                      e.g. "veil.example/keybroker/audit-log"
    <tree size, decimal>
    <root hash, standard base64>
    [extension lines]

A signed note is that text, one blank line, then one line per signature:

    — <key name> <base64(4-byte key ID ‖ 64-byte Ed25519 signature)>

The key ID is the first 4 bytes of SHA-256(key name ‖ "\\n" ‖ 0x01 ‖ public key);
a verifier key is written "<name>+<key ID hex>+<base64(0x01 ‖ public key)>" and
the matching signer key "PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 ‖ seed)>".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from .errors import CheckpointError

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "           # em dash, space
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")
_KEY_NAME = re.compile(r"^[^\s+]+$")
MAX_SIGNATURES = 100


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed commitment to the log's first `size` entries."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The checkpoint text exactly as it is signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        for line in lines:
            _check_line(line)
        return "".join(line + "\n" for line in lines)


def _check_line(line: str) -> None:
    if not line or "\n" in line or any(ord(c) < 0x20 for c in line):
        raise CheckpointError(f"checkpoint: line {line!r} is empty or has control characters")


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse checkpoint text strictly: origin, canonical decimal size, 32-byte base64 root, extensions."""
    if not body.endswith("\n"):
        raise CheckpointError("checkpoint: text must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"checkpoint: {len(lines)} lines; expected origin, size and root hash")
    for line in lines:
        _check_line(line)
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.match(size_text):
        raise CheckpointError(f"checkpoint: tree size {size_text!r} is not a canonical decimal number")
    root_hash = _b64(root_text, "checkpoint root hash")
    if len(root_hash) != 32:
        raise CheckpointError(f"checkpoint: root hash is {len(root_hash)} bytes; expected 32")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what}: not standard base64") from None
    if base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what}: not canonical base64")
    return raw


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not _KEY_NAME.match(name):
        raise CheckpointError(f"key name {name!r} must be non-empty, without spaces or '+'")


class NoteVerifier:
    """Checks signatures by one named Ed25519 key."""

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_name(name)
        self.name = name
        self.public_key = public_key
        self.raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, self.raw)

    @classmethod
    def from_key_string(cls, text: str) -> NoteVerifier:
        """Parse "<name>+<hex key ID>+<base64(0x01 ‖ public key)>"; the key ID must match."""
        parts = text.strip().split("+", 2)          # base64 may itself contain "+"
        if len(parts) != 3:
            raise CheckpointError("verifier key: expected <name>+<key id>+<base64 key>")
        name, hex_id, b64 = parts
        _check_name(name)
        raw = _b64(b64, "verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("verifier key: only Ed25519 keys (0x01 ‖ 32 bytes) are supported")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if hex_id.lower() != verifier.key_id.hex():
            raise CheckpointError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier

    def key_string(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    def verifies(self, text: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"NoteVerifier({self.key_string()!r})"


class NoteSigner:
    """Signs notes with one named Ed25519 private key. Its repr never shows the key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.verifier = NoteVerifier(name, private_key.public_key())
        self.name = name
        self._key = private_key

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key_string(cls, text: str) -> NoteSigner:
        """Parse "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ 32-byte seed)>"."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise CheckpointError("signer key: expected PRIVATE+KEY+<name>+<key id>+<base64 key>")
        raw = _b64(parts[4], "signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("signer key: only Ed25519 keys (0x01 ‖ 32 bytes) are supported")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if parts[3].lower() != signer.verifier.key_id.hex():
            raise CheckpointError(f"signer key {parts[2]}: key ID does not match the key")
        return signer

    def private_key_string(self) -> str:
        """The secret key in signed-note form: write it to a 0600 file, never to a log or console."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{raw}"

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.verifier.key_id.hex()})"


def generate_key(name: str) -> tuple[str, str]:
    """A new (private key string, verifier key string). Store the first with mode 0600."""
    signer = NoteSigner.generate(name)
    return signer.private_key_string(), signer.verifier.key_string()


def sign_note(body: str, signers: Iterable[NoteSigner]) -> str:
    """Append one signature line per signer to `body` (which must end with a newline)."""
    signers = list(signers)
    if not body.endswith("\n") or "\n\n" in body or not signers:
        raise CheckpointError("note: text must end with one newline, have no blank line, and a signer")
    lines = []
    for signer in signers:
        blob = signer.verifier.key_id + signer.sign(body.encode())
        lines.append(f"{SIG_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n")
    return body + "\n" + "".join(lines)


@dataclass(frozen=True, slots=True)
class _Signature:
    name: str
    key_id: bytes
    signature: bytes


def split_note(note: str) -> tuple[str, list[_Signature]]:
    """Separate a signed note into its text and its parsed signature lines."""
    if not note.endswith("\n"):
        raise CheckpointError("note: must end with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("note: no blank line before the signatures")
    text, block = note[: cut + 1], note[cut + 2:]
    lines = block[:-1].split("\n") if block else []
    if not lines or len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note: {len(lines)} signature lines; expected 1 to {MAX_SIGNATURES}")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> _Signature:
    if not line.startswith(SIG_PREFIX):
        raise CheckpointError(f"note: signature line {line[:40]!r} does not start with '— '")
    parts = line[len(SIG_PREFIX):].split(" ")
    if len(parts) != 2:
        raise CheckpointError("note: a signature line is '— <key name> <base64 signature>'")
    name, blob = parts[0], _b64(parts[1], f"signature by {parts[0]}")
    _check_name(name)
    if len(blob) < 5:
        raise CheckpointError(f"note: signature by {name} is too short")
    return _Signature(name, blob[:4], blob[4:])


def verify_note(note: str, verifiers: Iterable[NoteVerifier]) -> str:
    """Check a signed note's signatures and return its text.

    At least one signature must come from a key in `verifiers`; signatures by
    other keys are ignored; a signature by a known key that fails is an error.
    """
    text, signatures = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verifies(text.encode(), sig.signature):
            raise CheckpointError(f"note: signature by {sig.name} ({sig.key_id.hex()}) does not verify")
        verified.append(sig.name)
    if not verified:
        names = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signatures)
        raise CheckpointError(f"note: no signature by a trusted key (signed by: {names})")
    return text


def open_note(note: str, verifiers: Iterable[NoteVerifier]) -> Checkpoint:
    """Verify a signed checkpoint note (see verify_note) and parse its checkpoint."""
    return parse_checkpoint(verify_note(note, verifiers))
