"""Prometheus metrics of the ingest pipeline (one registry per process; /metrics serves it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter("shequ_ingest_messages_total", "Messages taken in, by transport and outcome",
                   ["transport", "outcome"], registry=REGISTRY)  # outcome: accepted|duplicate|dead
DEAD = Counter("shequ_ingest_dead_letters_total", "Messages dead-lettered, by reason", ["reason"],
               registry=REGISTRY)
BATCHES = Counter("shequ_ingest_batches_total", "Batches committed", registry=REGISTRY)
BATCH_SECONDS = Histogram("shequ_ingest_batch_seconds", "Time to process and commit one batch",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                          registry=REGISTRY)
BATCH_SIZE = Histogram("shequ_ingest_batch_size", "Messages per batch",
                       buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000), registry=REGISTRY)
LAG = Gauge("shequ_ingest_lag_seconds", "Age of the newest committed message when its batch committed "
            "(receipt to commit)", registry=REGISTRY)
RATE = Gauge("shequ_ingest_messages_per_second", "Messages accepted per second over the last 10 s",
             registry=REGISTRY)
