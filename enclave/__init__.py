"""Veil enclave: what runs inside the confidential VM.

sealing/   sealed-weights format (seal, unseal into locked memory)
loader     the `veil-sealed` vLLM load format (registered by plugin via vllm.general_plugins)
keyagent   in-memory data-key hand-off to the vLLM worker (abstract UNIX socket, SO_PEERCRED)
staging    config/tokenizer (never weights) in a private tmpfs directory
engine     sealed_engine(): AsyncLLM on a sealed model
boot/      the boot agent: key from the broker, serve sequence, front ends, call-audit shipping
server/    vLLM's gRPC API + veil.attestation.v1 + health + reflection, TLS bound to the attestation
client     attesting client: verify evidence, binding and policy before any prompt
"""
