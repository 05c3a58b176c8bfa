"""Per-call audit: a hash chain of call records, signed with the enclave's attested TLS key.

One `CallRecord` per VllmEngine call: time (UTC), caller (the JWT subject, or
"anonymous"), method, model, prompt and completion token counts, latency and
gRPC status. A record has no text field at all (pydantic, extra="forbid"), so
neither a prompt nor a completion can enter the chain.

    chain = CallAuditChain(identity, model="tiny")     # a TlsIdentity or any EC private key
    entry = chain.append(record_fields...)             # or the server's hook does it per call
    verify_chain(chain.entries(), identity.certificate.public_key())

Each entry is {record, prev_hash, hash, signature}:

    hash      = SHA-256(prev_hash ‖ JCS(record))          (prev_hash of seq 0: 32 zero bytes)
    signature = ECDSA-SHA256(key, b"veil-callaudit-v1\\0" ‖ hash)   (DER, base64)

— every entry signs the head of the chain as it stood after it, with the key
whose JWK the attestation binds (GetAttestation's `tee-pubkey`). `verify_chain`
names the first bad seq for an edited, deleted, reordered or inserted entry
and for a signature by another key. Truncating the tail is detectable only
against a head seen elsewhere (`expected_head`, e.g. the last head shipped to
the broker).

The record format, the chain check and the batch format are the broker's
(`keybroker.audit.calls`: it verifies what it ingests); `broker_payload()`
builds a batch and `enclave.callship` ships batches to the broker's log.
"""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import threading
import time
from collections import deque
from typing import Any, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from keybroker.audit.calls import (BATCH_TYPE, GENESIS, SIGNING_CONTEXT, CallRecord, ChainCheck, ChainEntry,
                                   batch_document, entry_hash, export_jsonl, parse_jsonl, verify_chain)

__all__ = ["ANONYMOUS", "BATCH_TYPE", "CallAuditChain", "CallMeter", "CallRecord", "ChainCheck", "ChainEntry",
           "broker_payload", "export_jsonl", "meter_handler", "parse_jsonl", "verify_chain"]

ANONYMOUS = "anonymous"


def _public_key(key: Any) -> ec.EllipticCurvePublicKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    return key.public_key()                          # TlsIdentity


class CallAuditChain:
    """Thread-safe append-only chain of call records, each entry signed with `signing_key`.

    `signing_key`: an EC private key, or the server's TlsIdentity (its attested
    key; the private key stays inside it). Keeps the last `keep` entries in
    memory; the head (hash, seq) is kept regardless.
    """

    def __init__(self, signing_key: Any, *, model: str = "", keep: int = 100_000) -> None:
        if not (isinstance(signing_key, ec.EllipticCurvePrivateKey) or hasattr(signing_key, "sign")):
            raise TypeError("signing_key must be an EC private key or a TlsIdentity")
        self._key = signing_key
        self.model = model
        self._lock = threading.Lock()
        self._entries: deque[ChainEntry] = deque(maxlen=keep)
        self._head = GENESIS
        self._seq = 0

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return _public_key(self._key)

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(data)

    def append(self, *, caller: str | None, method: str, prompt_tokens: int = 0, completion_tokens: int = 0,
               latency_ms: float = 0.0, status: str = "OK", model: str | None = None,
               time: dt.datetime | None = None) -> ChainEntry:
        with self._lock:
            record = CallRecord(seq=self._seq, time=time or dt.datetime.now(dt.timezone.utc),
                                caller=caller or ANONYMOUS, method=method,
                                model=self.model if model is None else model, prompt_tokens=prompt_tokens,
                                completion_tokens=completion_tokens, latency_ms=round(latency_ms, 3),
                                status=status)
            digest = entry_hash(self._head, record)
            entry = ChainEntry(record=record, prev_hash=self._head.hex(), hash=digest.hex(),
                               signature=base64.b64encode(self._sign(SIGNING_CONTEXT + digest)).decode())
            self._entries.append(entry)
            self._head = digest
            self._seq += 1
            return entry

    def entries(self) -> list[ChainEntry]:
        with self._lock:
            return list(self._entries)

    def head(self) -> tuple[int, str]:
        """(entries appended so far, head hash hex)."""
        with self._lock:
            return self._seq, self._head.hex()

    def wrap(self, handler: Any, method: str, caller: str | None) -> Any:
        """The gRPC method handler, metered: one record per call when it ends, whatever the outcome."""
        return meter_handler(handler, lambda **f: self.append(method=method, caller=caller, **f))


def _jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    from .server.tls import public_jwk

    return public_jwk(key)


def broker_payload(entries: Sequence[ChainEntry], public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """A batch for the broker's attestation log (keybroker.audit.calls.batch_document)."""
    return batch_document(entries, _jwk(_public_key(public_key)))


# --- the server hook: meter a gRPC method handler ---------------------------------------------------------


class CallMeter:
    """Token counts from the responses, as smg-grpc-servicer sends them.

    prompt: the largest `prompt_tokens` seen. completion, per output index: the
    sum of the stream chunks' `completion_tokens` (deltas); a `complete`
    message's count is used only for an index that streamed no chunk (the
    non-streamed case: it then carries all tokens; when streaming it repeats
    the last delta).
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.time = dt.datetime.now(dt.timezone.utc)
        self.prompt_tokens = 0
        self._streamed: dict[int, int] = {}
        self._final: dict[int, int] = {}

    def observe(self, response: Any) -> None:
        try:
            which = response.WhichOneof("response") if hasattr(response, "WhichOneof") else None
        except ValueError:
            which = None
        message = getattr(response, which) if which else response
        prompt = getattr(message, "prompt_tokens", None)
        if isinstance(prompt, int):
            self.prompt_tokens = max(self.prompt_tokens, prompt)
        completion = getattr(message, "completion_tokens", None)
        if isinstance(completion, int):
            index = getattr(message, "index", 0)
            index = index if isinstance(index, int) else 0
            if which == "chunk":
                self._streamed[index] = self._streamed.get(index, 0) + completion
            else:
                self._final[index] = max(self._final.get(index, 0), completion)

    @property
    def completion_tokens(self) -> int:
        indices = set(self._streamed) | set(self._final)
        return sum(self._streamed[i] if i in self._streamed else self._final[i] for i in indices)

    def fields(self, status: str) -> dict[str, Any]:
        return dict(time=self.time, prompt_tokens=self.prompt_tokens,
                    completion_tokens=self.completion_tokens,
                    latency_ms=(time.perf_counter() - self.started) * 1000, status=status)


def _status(context: Any, exc: BaseException | None) -> str:
    import asyncio

    import grpc

    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    code = None
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 - older grpcio, or a test double
        pass
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        for candidate in grpc.StatusCode:
            if candidate.value[0] == code:
                return candidate.name
    return "UNKNOWN" if exc is not None else "OK"


def meter_handler(handler: Any, record: Any) -> Any:
    """Wrap every behaviour of a grpc.RpcMethodHandler so that `record(**fields)` runs once per call."""

    def finish(meter: CallMeter, context: Any, exc: BaseException | None) -> None:
        status = _status(context, exc)
        if status == "OK" and exc is not None:
            status = "UNKNOWN"
        record(**meter.fields(status))

    def streaming(behavior):
        async def wrapped(request, context):
            meter, error = CallMeter(), None
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        meter.observe(response)
                        yield response
                elif result is not None:
                    for response in result:
                        meter.observe(response)
                        yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(meter, context, error)
        return wrapped

    def unary(behavior):
        async def wrapped(request, context):
            meter, error = CallMeter(), None
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    meter.observe(result)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(meter, context, error)
        return wrapped

    if handler is None:
        return None
    changes = {}
    for name, wrap in (("unary_unary", unary), ("stream_unary", unary), ("unary_stream", streaming),
                       ("stream_stream", streaming)):
        behavior = getattr(handler, name)
        if behavior is not None:
            changes[name] = wrap(behavior)
    return handler._replace(**changes)
