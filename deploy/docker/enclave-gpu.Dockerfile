# Veil enclave image, GPU backend (CUDA vLLM), for confidential VMs (TDX / SEV-SNP) with NVIDIA
# H100/H200/B200 GPUs in confidential-computing (CC) mode. `gpu-attester` adds NVML for GPU evidence.
#   docker build -f deploy/docker/enclave-gpu.Dockerfile -t veil-enclave-gpu:0.1.0 .
# The host/guest needs the NVIDIA driver with CC support; the image only carries the CUDA user space
# (and vLLM's pip wheels bring their own CUDA libraries through torch).
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/veil/venv \
    PATH=/opt/veil/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libnuma1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/veil/venv

RUN groupadd --system --gid 10001 veil \
 && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --create-home --shell /usr/sbin/nologin veil

WORKDIR /src
COPY pyproject.toml README.md ./
COPY attestation ./attestation
COPY policies ./policies
COPY keybroker ./keybroker
COPY enclave ./enclave
COPY veil ./veil
RUN pip install ".[gpu,enclave,gpu-attester]" && rm -rf /src

USER 10001:10001
WORKDIR /var/lib/veil
ENV VEIL_HOME=/var/lib/veil

EXPOSE 50051

HEALTHCHECK --interval=30s --timeout=3s --start-period=900s --retries=3 \
  CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 50051), timeout=2).close()"]

ENTRYPOINT ["veil", "enclave", "serve"]
CMD ["--help"]
