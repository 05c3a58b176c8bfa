"""Front ends: the APIs the boot sequence starts on the engine, all behind the one attested TLS identity.

A front end is built by a factory from `Serving` (what every front end shares:
the engine, the attested TLS identity, the platform, the per-call audit chain)
and is started and stopped by the serve sequence. The gRPC API is the first;
another (say, an OpenAI-compatible HTTP API) is another factory in
`BootConfig.front_ends`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..callaudit import CallAuditChain
from .events import Event
from .platform import Platform


@dataclass(frozen=True, slots=True)
class Serving:
    engine: Any                      # vLLM's AsyncLLM on the sealed model
    identity: Any                    # enclave.server.TlsIdentity: its key is the one the evidence binds
    platform: Platform
    calls: CallAuditChain            # one chain for every front end's calls
    model: str                       # the sealed model's directory name, for messages


class FrontEnd(Protocol):
    async def start(self) -> Event:
        """Start serving; the event says where (it reaches the progress callback)."""

    async def stop(self) -> None:
        """Refuse new calls, drain the ones in flight, stop."""


FrontEndFactory = Callable[[Serving], FrontEnd]


class GrpcFrontEnd:
    """vLLM's gRPC API, veil.attestation.v1, health and reflection (enclave.server) on one TLS port."""

    def __init__(self, serving: Serving, address: str, auth) -> None:
        from ..server import EnclaveServer

        self.serving = serving
        self.address = address
        self.server = EnclaveServer(serving.engine, identity=serving.identity, attester=serving.platform.attester,
                                    auth=auth, tdx_collateral=serving.platform.tdx_collateral,
                                    snp_crls=serving.platform.snp_crls, calls=serving.calls)

    async def start(self) -> Event:
        port = await self.server.start(self.address)
        return Event("serving", f"serving {self.serving.model} on port {port} (TLS only); certificate sha256 "
                                f"{self.serving.identity.fingerprint()}", data={"api": "grpc", "port": port})

    async def stop(self) -> None:
        await self.server.stop()


def grpc_front_end(address: str, auth) -> FrontEndFactory:
    """The gRPC front end on `address` (HOST:PORT; port 0 picks one); `auth`: a BearerAuth or None."""
    return lambda serving: GrpcFrontEnd(serving, address, auth)
