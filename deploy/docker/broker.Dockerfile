# Veil key broker image: `veil[broker]` only — never vLLM, never torch.
# Build from the repository root:
#   docker build -f deploy/docker/broker.Dockerfile -t veil-broker:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root user with a fixed uid/gid (the compose file and the Kubernetes manifests rely on 10001).
RUN groupadd --system --gid 10001 veil \
 && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --create-home --shell /usr/sbin/nologin veil

WORKDIR /src
COPY pyproject.toml README.md ./
COPY attestation ./attestation
COPY policies ./policies
COPY keybroker ./keybroker
COPY enclave ./enclave
COPY veil ./veil
RUN pip install ".[broker]" && rm -rf /src

USER 10001:10001
WORKDIR /var/lib/veil
# VEIL_HOME: writable state (collateral cache etc.); mount a volume or an emptyDir here.
ENV VEIL_HOME=/var/lib/veil

EXPOSE 8080

# /healthz is liveness (process up); /readyz additionally checks the database and the KEK.
# Plain-HTTP check: with --tls-cert/--tls-key (Kubernetes) the kubelet's HTTPS probes are used instead.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["veil", "broker", "serve"]
# Production defaults: listen on all interfaces inside the container, PostgreSQL and the KEK given by the
# orchestrator (see deploy/compose.yaml and deploy/k8s/broker-deployment.yaml). --allow-emulated is NEVER a default.
CMD ["--host", "0.0.0.0", "--port", "8080"]
