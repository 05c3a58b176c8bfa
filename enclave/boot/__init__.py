"""The enclave's boot agent: from a sealed model directory to an attested server, and back down.

    config = BootConfig(sealed=..., key=BrokerKey(url, "models/tiny/dek"), platform=Platform.detect("tdx"),
                        front_ends=(grpc_front_end("0.0.0.0:50051", auth),))
    boot(config, progress=print_event)

The sequence (enclave.boot.serve): attest to the key broker and receive the
data key (enclave.boot.key) → start vLLM on the sealed model, the key handed to
the loading workers in memory and wiped once the weights are in → a fresh TLS
identity, optionally certified by the broker's enclave CA → every front end
started → serve until SIGINT/SIGTERM → front ends drained and stopped → the
engine shut down → the per-call audit shipped once more.

The key goes broker → this package → the loader; no front end and no caller
ever holds it. Progress is reported as Events to a callback; printing them is
the caller's business. Another platform is another `Platform`; another API is
another front-end factory (enclave.boot.frontends).
"""

from .config import BootConfig, BrokerKey, KeyFile, KeySource
from .events import Event, Progress, ignore
from .frontends import FrontEnd, Serving, grpc_front_end
from .platform import Platform
from .run import boot, configure_vllm_logging

__all__ = ["BootConfig", "BrokerKey", "Event", "FrontEnd", "KeyFile", "KeySource", "Platform", "Progress",
           "Serving", "boot", "configure_vllm_logging", "grpc_front_end", "ignore"]
