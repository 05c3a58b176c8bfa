"""The enclave's gRPC server: vLLM's own VllmEngine service, attestation, health, reflection — TLS only.

    server = EnclaveServer(engine, identity=TlsIdentity(), attester=attester, auth=BearerAuth(...))
    port = await server.start("0.0.0.0:50051")
    ...
    await server.stop()   # NOT_SERVING → stop(grace); the caller then shuts the engine down
"""

from .app import EnclaveServer
from .auth import AuditEntry, BearerAuth
from .tls import SERVER_NAME, TlsIdentity, certificate_jwk, public_jwk

__all__ = ["AuditEntry", "BearerAuth", "EnclaveServer", "SERVER_NAME", "TlsIdentity", "certificate_jwk",
           "public_jwk"]
