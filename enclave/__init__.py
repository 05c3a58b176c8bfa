"""Veil enclave: boot agent, sealed weights, vLLM loader and attested gRPC server.

Runs inside the confidential VM. Not yet built.
"""
