"""`shequ bench ingest`: messages per second and publish-to-commit latency of the ingest pipeline.

(a) in-process: pre-encoded messages (with device tokens, as over MQTT) fed to ``Pipeline.process``
    in batches; (b) through a private Mosquitto, QoS 1, with 1 and 2 ``shequ worker`` processes
    (a shared subscription), the publisher in this process; (c) latency at a steady 5,000 msg/s
    through Mosquitto with one worker. The change-handler hook runs a threshold check over every
    reading ("rules on"; the rule engine of the loop issue plugs in at the same hook).

Runs in a scratch tenant of a scratch database (``--db-url``; default a new SQLite file in a
temporary directory), so the demo data is untouched.
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console

TYPES = (  # a mix of the kernel's chatty types: (type, fields with a value range)
    ("water_meter", {"flow_lpm": (0.0, 30.0)}),
    ("smart_breaker", {"current_a": (0.0, 60.0), "voltage_v": (210.0, 235.0), "power_w": (0.0, 9000.0)}),
    ("noise_monitor", {"laeq_db": (35.0, 85.0)}),
    ("smoke_detector", {"temperature_c": (10.0, 40.0)}),
    ("charging_pile", {"power_w": (0.0, 7000.0), "temperature_c": (10.0, 60.0)}),
)
THRESHOLDS = {"flow_lpm": 25.0, "current_a": 55.0, "laeq_db": 80.0, "temperature_c": 55.0, "power_w": 8500.0}


def _setup(db_url: str, devices: int) -> tuple[Any, str, int, list[tuple[str, str, dict[str, tuple[float, float]]]]]:
    """Scratch database and tenant with ``devices`` devices and tokens; returns (engine, tenant, id, devices)."""
    os.environ["SHEQU_DATABASE_URL"] = db_url
    from shequ.config import get_settings

    get_settings.cache_clear()
    from shequ.core.iot.credentials import token_digest
    from shequ.core.migrate import upgrade
    from shequ.core.places.service import create_place, create_tenant
    from shequ.db import get_engine, session_scope

    upgrade()
    engine = get_engine()
    code = f"B{uuid.uuid4().hex[:8]}"
    with session_scope(actor="bench") as s:
        tenant_id = create_tenant(session=s, code=code, name="基准测试街道", district="", city="").id
    with session_scope(tenant_id=tenant_id, actor="bench") as s:
        grid = create_place(session=s, kind="grid", code="G1", name="第1网格")
        committee = create_place(session=s, kind="committee", code="C1", name="基准居委", parent=grid)
        building = create_place(session=s, kind="building", code="B1", name="1号楼", floors=20, parent=committee)
        building_id = building.id
    rows, out = [], []
    for i in range(devices):
        dtype, fields = TYPES[i % len(TYPES)]
        dcode = f"D{i:06d}"
        token = f"sqd_bench_{code}_{i}"
        rows.append({"tenant_id": tenant_id, "code": dcode, "name": dcode, "type_code": dtype,
                     "place_id": building_id, "building_id": building_id, "status": "active", "attrs": {},
                     "token_hash": token_digest(token)})
        out.append((dcode, token, fields))
    from sqlalchemy import insert

    from shequ.core.iot.models import Device

    with engine.begin() as conn:
        conn.execute(insert(Device), rows)
    return engine, code, tenant_id, out


def _payloads(devs: list[tuple[str, str, dict[str, tuple[float, float]]]], n: int, run: str, t0: int,
              rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        dcode, token, fields = devs[i % len(devs)]
        values = {k: round(rng.uniform(lo, hi), 2) for k, (lo, hi) in fields.items()}
        body = json.dumps({"id": f"{run}-{i}", "ts": t0 + i // 100, "v": values, "tk": token},
                          separators=(",", ":")).encode()
        out.append((dcode, body))
    return out


def rules_on() -> Any:
    """A stand-in rule set at the pipeline's hook: a threshold check over every reading."""
    from shequ.core.iot.pipeline import Changes, add_change_handler

    hits = [0]

    def threshold(changes: Changes) -> None:
        for _device, _ts, values in changes.readings:
            for k, v in values.items():
                limit = THRESHOLDS.get(k)
                if limit is not None and v > limit:
                    hits[0] += 1

    add_change_handler(threshold)
    return threshold


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def bench_inprocess(engine: Any, tenant: str, devs: list[Any], messages: int, batch: int) -> dict[str, Any]:
    from shequ.core.iot.pipeline import Inbound, Pipeline, now_ms
    from shequ.core.iot.telemetry import catch_up_rollups

    rng = random.Random(1)
    payloads = _payloads(devs, messages, uuid.uuid4().hex[:6], now_ms() - messages // 100, rng)
    pipeline = Pipeline(engine, rollup_every_s=1.0)
    latencies: list[float] = []
    started = time.perf_counter()
    accepted = 0
    for i in range(0, messages, batch):
        chunk = payloads[i:i + batch]
        t_in = time.perf_counter()
        inbound = [Inbound(body, "telemetry", tenant, dcode, transport="mqtt") for dcode, body in chunk]
        result = pipeline.process(inbound)
        accepted += result.accepted
        latencies.append((time.perf_counter() - t_in) * 1000)
    catch_up_rollups(engine)  # the rollups caught up: part of the cost
    seconds = time.perf_counter() - started
    return {"messages": messages, "accepted": accepted, "seconds": round(seconds, 3),
            "per_second": round(accepted / seconds), "batch": batch,
            "p50_ms": round(_pct(latencies, 50), 1), "p99_ms": round(_pct(latencies, 99), 1)}


def _start_workers(url: str, n: int, stats_dir: Path, batch: int,
                   sweeps: bool = False) -> list[tuple[subprocess.Popen[bytes], Path]]:
    # a share group per run: the persistent sessions of an earlier run's workers would keep
    # taking their share of the messages (queued for them) after those workers are gone
    group = f"bench{uuid.uuid4().hex[:6]}"
    out = []
    for w in range(n):
        stats = stats_dir / f"worker{w}-{uuid.uuid4().hex[:6]}.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", "from shequ.cli import app; app()", "worker", "--mqtt-url", url,
             "--id", f"bench-{uuid.uuid4().hex[:6]}", "--batch-max", str(batch), "--stats", str(stats),
             *([] if sweeps else ["--no-sweeps"]), "--group", group], env=dict(os.environ), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        out.append((proc, stats))
    return out


def _count(engine: Any, tenant_id: int, run: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM telemetry WHERE tenant_id = :t AND msg_id LIKE :r"),
                                {"t": tenant_id, "r": f"{run}-%"}).scalar() or 0)


def wait_for_workers(engine: Any, tenant_id: int, pub: Any, tenant: str, devs: list[Any],
                     pause_s: float = 0.5) -> None:
    """The workers are up once a probe message is stored; then every worker of the share subscribes."""
    from shequ.core.iot.pipeline import now_ms

    probe = uuid.uuid4().hex[:6]
    deadline = time.monotonic() + 60
    while _count(engine, tenant_id, probe) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not come up within 60 s")
        dcode, token, _ = devs[0]
        pub.publish(f"shequ/{tenant}/{dcode}/telemetry", json.dumps(
            {"id": f"{probe}-0", "ts": now_ms(), "v": {"flow_lpm": 1.0}, "tk": token}).encode())
        pub.wait_acked(10)
        time.sleep(pause_s)
    time.sleep(1.0)


def bench_mqtt(engine: Any, url: str, tenant: str, tenant_id: int, devs: list[Any], messages: int, workers: int,
               batch: int, stats_dir: Path, rate: int | None = None) -> dict[str, Any]:
    """Publish ``messages`` QoS 1 (at ``rate`` per second, or as fast as the broker takes them)."""
    from shequ.core.iot.mqtt import MqttClient
    from shequ.core.iot.pipeline import now_ms

    procs = _start_workers(url, workers, stats_dir, batch)
    try:
        pub = MqttClient(url, f"bench-pub-{uuid.uuid4().hex[:6]}")
        pub.connect()
        wait_for_workers(engine, tenant_id, pub, tenant, devs, pause_s=0.5 + 0.1 * workers)
        run = uuid.uuid4().hex[:6]
        rng = random.Random(2)
        topics = [f"shequ/{tenant}/{d[0]}/telemetry" for d in devs]
        encoded = [(d, json.dumps({k: round(rng.uniform(lo, hi), 2) for k, (lo, hi) in d[2].items()},
                                  separators=(",", ":"))) for d in devs]
        started_ms = now_ms()
        started = time.perf_counter()
        chunk = 200
        for i in range(0, messages, chunk):
            if rate:
                due = started + i / rate
                while (wait := due - time.perf_counter()) > 0:
                    pub.poll(min(wait, 0.01))
            ts = now_ms()
            for j in range(i, min(messages, i + chunk)):
                d, values = encoded[j % len(devs)]
                pub.publish(topics[j % len(devs)],
                            f'{{"id":"{run}-{j}","ts":{ts},"v":{values},"tk":"{d[1]}"}}'.encode(),
                            flush=False)
            pub.flush()
            while len(pub.unacked) > 20_000:
                pub.poll(0.005)
        pub.wait_acked(120)
        published_s = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while _count(engine, tenant_id, run) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {_count(engine, tenant_id, run)} of {messages} stored within 300 s")
            time.sleep(0.1)
        pub.close()
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            proc.wait(30)
    stats = [json.loads(path.read_text()) for _, path in procs if path.exists()]
    last = max(s["last_commit_ms"] for s in stats)
    latencies = [x for s in stats for x in s["latencies_ms"]]
    batch_ms = [x for s in stats for x in s.get("batch_ms", [])]
    seconds = (last - started_ms) / 1000
    return {"messages": messages, "workers": workers, "rate": rate, "seconds": round(seconds, 3),
            "per_second": round(messages / seconds), "publish_per_second": round(messages / published_s),
            "per_worker": [s["accepted"] for s in stats], "batches": sum(s["batches"] for s in stats),
            "p50_ms": _pct(latencies, 50), "p99_ms": _pct(latencies, 99),
            "batch_p50_ms": _pct(batch_ms, 50), "batch_max_ms": max(batch_ms, default=0.0),
            "batch_slowest_ms": sorted(batch_ms)[-8:],
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None}


def bench_ingest(*, messages: int, devices: int, batch: int, mqtt: bool, db_url: str | None,
                 latency_rate: int, latency_seconds: int, as_json: bool, console: Console) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="shequ-bench-"))
    url = db_url or f"sqlite:///{tmp / 'bench.db'}"
    os.environ.setdefault("SHEQU_VAR_DIR", str(tmp))
    engine, tenant, tenant_id, devs = _setup(url, devices)
    rules_on()
    db = url.split("://", 1)[0].split("+", 1)[0]
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": db, "devices": devices,
    }
    figures["inprocess"] = bench_inprocess(engine, tenant, devs, messages, batch)
    if not as_json:
        console.print(f"in-process ({db}): {figures['inprocess']}")
    if mqtt:
        from shequ.core.iot.broker import Broker

        with Broker(tmp / "mosquitto") as broker:
            for workers in (1, 2):
                key = f"mqtt_{workers}_worker{'s' if workers > 1 else ''}"
                figures[key] = bench_mqtt(engine, broker.url, tenant, tenant_id, devs, messages, workers, batch, tmp)
                if not as_json:
                    console.print(f"MQTT QoS 1, {workers} worker(s): "
                                  f"{ {k: v for k, v in figures[key].items() if k != 'per_worker'} }")
            figures["latency"] = bench_mqtt(engine, broker.url, tenant, tenant_id, devs,
                                            latency_rate * latency_seconds, 1, batch, tmp, rate=latency_rate)
            if not as_json:
                console.print(f"latency at {latency_rate}/s, 1 worker: {figures['latency']}")
    if as_json:
        print(json.dumps(figures))
    return figures
