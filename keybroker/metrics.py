"""Prometheus metrics, in a registry per app. Under the supervisor (`--workers N`, keybroker/serving.py)
each worker's values live in files of a directory the supervisor made (prometheus_client's multiprocess
mode, PROMETHEUS_MULTIPROC_DIR), and any worker's /metrics answers with all workers' values summed, a dead
worker's counts included."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attestations = Counter("veil_broker_attestations_total", "Attestations by result",
                                    ["result"], registry=self.registry)
        self.releases = Counter("veil_broker_releases_total", "Resources released", registry=self.registry)
        self.call_batches = Counter("veil_broker_call_audit_batches_total", "Enclave call-audit batches appended",
                                    registry=self.registry)
        self.denials = Counter("veil_broker_denials_total", "Denials by reason code", ["stage", "reason"],
                               registry=self.registry)
        self.latency = Histogram("veil_broker_request_seconds", "Request latency by endpoint", ["endpoint"],
                                 buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                                 registry=self.registry)
        self.rate_limited = Counter("veil_broker_rate_limited_total",
                                    "KBS requests refused with 429: the address spent its denial budget",
                                    registry=self.registry)
        self.group_commit_jobs = Histogram("veil_broker_group_commit_jobs",
                                           "KBS writes committed together per transaction (keybroker/db/batch.py)",
                                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.admin = Counter("veil_broker_admin_actions_total", "Admin actions", ["action"],
                             registry=self.registry)


def exposition(metrics: Metrics) -> bytes:
    """The text exposition for /metrics: every worker's values where the supervisor keeps them in files,
    else this process's registry."""
    path = os.environ.get(MULTIPROCESS_ENV)
    if not path:
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    return generate_latest(registry)
