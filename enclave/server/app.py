"""The attested gRPC server, shaped like vLLM's `entrypoints/launchers/grpc_server.py`.

Services: vLLM's `vllm.grpc.engine.VllmEngine` (smg-grpc-servicer over an
AsyncLLM), `veil.attestation.v1.Attestation`, `grpc.health.v1.Health`, and
reflection. One secure port; there is no insecure port at all. Shutdown runs
as vLLM's does: health NOT_SERVING → server.stop(grace) → (the caller) engine
shutdown.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import grpc

from attestation.attesters import Attester

from ..callaudit import CallAuditChain
from ..errors import ServingError
from .attest import AttestationServicer
from .auth import AuditEntry, AuthInterceptor, BearerAuth
from .protos import attestation_pb2, attestation_pb2_grpc
from .tls import TlsIdentity

# The same channel options as vLLM's gRPC launcher (see its comments on ping strikes and keepalives).
SERVER_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 10000),
    ("grpc.keepalive_permit_without_calls", True),
]


def _model_name(engine: Any) -> str:
    try:
        name = engine.model_config.served_model_name
    except AttributeError:
        return ""
    return name[0] if isinstance(name, (list, tuple)) and name else str(name or "")


class EnclaveServer:
    """vLLM's gRPC API over TLS whose key the attestation binds; client auth by bearer JWT."""

    def __init__(self, engine: Any, *, identity: TlsIdentity, attester: Attester, auth: BearerAuth | None,
                 tdx_collateral: Callable | None = None, snp_crls: Callable | None = None,
                 record: Callable[[AuditEntry], None] | None = None, grace: float = 5.0,
                 calls: CallAuditChain | None = None) -> None:
        self.engine = engine
        self.identity = identity
        self.grace = grace
        # Per-call audit (enclave.callaudit): hash-chained records signed with the attested TLS key.
        self.calls = calls if calls is not None else CallAuditChain(identity, model=_model_name(engine))
        self.interceptor = AuthInterceptor(auth, record=record, calls=self.calls)
        self.attestation = AttestationServicer(attester, identity, tdx_collateral=tdx_collateral,
                                               snp_crls=snp_crls)
        self._server: grpc.aio.Server | None = None
        self._health = None
        self.port: int | None = None

    @property
    def audit(self) -> list[AuditEntry]:
        return self.interceptor.audit

    def _build(self) -> grpc.aio.Server:
        from grpc_health.v1 import health_pb2_grpc
        from grpc_reflection.v1alpha import reflection
        from smg_grpc_proto import vllm_engine_pb2, vllm_engine_pb2_grpc
        from smg_grpc_servicer.vllm.health_servicer import VllmHealthServicer
        from smg_grpc_servicer.vllm.servicer import VllmEngineServicer

        server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[self.interceptor])
        if self.engine is None:   # no engine (tests of the attested channel): every VllmEngine call UNIMPLEMENTED
            engine_servicer = vllm_engine_pb2_grpc.VllmEngineServicer()
            from grpc_health.v1.health import aio as health_aio
            self._health = health_aio.HealthServicer()
        else:
            engine_servicer = VllmEngineServicer(self.engine, time.time())
            self._health = VllmHealthServicer(self.engine)
        vllm_engine_pb2_grpc.add_VllmEngineServicer_to_server(engine_servicer, server)
        attestation_pb2_grpc.add_AttestationServicer_to_server(self.attestation, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = (vllm_engine_pb2.DESCRIPTOR.services_by_name["VllmEngine"].full_name,
                 attestation_pb2.DESCRIPTOR.services_by_name["Attestation"].full_name,
                 "grpc.health.v1.Health", reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        return server

    async def start(self, address: str = "0.0.0.0:50051") -> int:
        """Bind the one TLS port (":0" picks a free one) and start serving; return the port."""
        self._server = self._build()
        port = self._server.add_secure_port(address, self.identity.server_credentials())
        if port == 0:
            raise ServingError(f"cannot bind the TLS port at {address}")
        await self._server.start()
        self.port = port
        return port

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def stop(self) -> None:
        """NOT_SERVING, then stop with grace; the engine is the caller's to shut down next."""
        if self._server is None:
            return
        if self.engine is None:
            from grpc_health.v1 import health_pb2
            await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        else:
            self._health.set_not_serving()
        await self._server.stop(grace=self.grace)
        self._server = None

