"""`shequ bench loop`: how fast the closed loop answers under load.

A private Mosquitto, ``shequ worker`` processes (the rule engine with the default rules), a
publisher at a steady background rate (default 5,000 telemetry messages/s, QoS 1) and, mixed
into it, smoke readings from distinct smoke detectors (default 10/s). Publish → alarm is the
time from a smoke reading's publication (its ``ts``) until a reader of the database polling
every 5 ms sees its alarm committed (so it includes up to 5 ms of polling); alarm → dispatched
case is read from the database (the worker opens, registers and dispatches the case in its own
transaction right after the alarm's batch committed). Every smoke
reading must have produced exactly one CRITICAL alarm and one dispatched case, or the run fails.

Runs in a scratch tenant of a scratch database (``--db-url``; default a new SQLite file).
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console

from shequ.sim.bench_ingest import TYPES, _pct, _setup, _start_workers, wait_for_workers


def _smoke_devices(engine: Any, tenant_id: int, n: int, code: str) -> list[tuple[str, str]]:
    """``n`` smoke detectors, each in its own room of the scratch building, with tokens."""
    from sqlalchemy import insert, select

    from shequ.core.iot.credentials import token_digest
    from shequ.core.iot.models import Device
    from shequ.core.places.models import Place
    from shequ.core.places.service import create_place
    from shequ.db import session_scope

    with session_scope(tenant_id=tenant_id, actor="bench") as s:
        building = s.scalars(select(Place).where(Place.kind == "building")).one()
        unit = create_place(session=s, kind="unit", code="U1", name="1单元", parent=building)
        rooms = []
        for k in range(n):
            floor_no = k // 10 + 1
            floor = (s.scalars(select(Place).where(Place.kind == "floor", Place.floor_no == floor_no)).first()
                     or create_place(session=s, kind="floor", code=f"F{floor_no}", name=f"{floor_no}层", parent=unit,
                                     floor_no=floor_no))
            rooms.append(create_place(session=s, kind="room", code=f"R{k}", name=f"{floor_no}{k % 10 + 1:02d}室",
                                      parent=floor, floor_no=floor_no))
        ancestry = [(r.id, r.ancestry()) for r in rooms]
    rows: list[dict[str, Any]] = []
    out: list[tuple[str, str]] = []
    for k, (room_id, anc) in enumerate(ancestry):
        dcode, token = f"SMOKE{k:05d}", f"sqd_smoke_{code}_{k}"
        rows.append({"tenant_id": tenant_id, "code": dcode, "name": f"烟感{k}", "type_code": "smoke_detector",
                     "place_id": room_id, "status": "active", "attrs": {}, "token_hash": token_digest(token),
                     **{key: anc[key] for key in ("grid_id", "committee_id", "compound_id", "building_id")}})
        out.append((dcode, token))
    with engine.begin() as conn:
        conn.execute(insert(Device), rows)
    return out


def _dispatched(engine: Any, tenant_id: int) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM work_order WHERE tenant_id = :t AND source = 'alarm' "
                                     "AND dispatched_at IS NOT NULL"), {"t": tenant_id}).scalar() or 0)


def bench_loop(*, rate: int, seconds: int, smoke_per_s: float, devices: int, db_url: str | None,
               workers: int, as_json: bool, console: Console) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="shequ-bench-loop-"))
    url = db_url or f"sqlite:///{tmp / 'bench.db'}"
    os.environ.setdefault("SHEQU_VAR_DIR", str(tmp))
    engine, tenant, tenant_id, devs = _setup(url, devices)
    n_smoke = max(1, int(smoke_per_s * seconds))
    smokes = _smoke_devices(engine, tenant_id, n_smoke, tenant)

    from sqlalchemy import select, text

    from shequ.core.alarms.models import Alarm
    from shequ.core.cases.models import Case
    from shequ.core.iot.broker import Broker
    from shequ.core.iot.mqtt import MqttClient
    from shequ.core.iot.pipeline import now_ms
    from shequ.db import session_scope
    from shequ.sim.demo import prepare_loop

    prepare_loop(tenant_id=tenant_id)
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": url.split("://", 1)[0].split("+", 1)[0], "background_rate": rate, "seconds": seconds,
        "smoke_readings": n_smoke, "devices": devices + n_smoke, "workers": workers,
    }
    seen_at: dict[int, int] = {}  # alarm id -> when this process first saw it committed (epoch ms)
    source_ms: dict[int, int] = {}
    stop_watch = threading.Event()

    def watch() -> None:
        """See each alarm as soon as it is committed, as any reader of the database would."""
        last = 0
        with engine.connect() as conn:
            while not stop_watch.is_set():
                rows = conn.execute(text("SELECT id, source_ms FROM alarm WHERE tenant_id = :t AND id > :last"),
                                    {"t": tenant_id, "last": last}).all()
                conn.rollback()
                t = now_ms()
                for alarm_id, ms in rows:
                    seen_at[alarm_id], source_ms[alarm_id] = t, ms
                    last = max(last, alarm_id)
                stop_watch.wait(0.005)

    with Broker(tmp / "mosquitto") as broker:
        procs = _start_workers(broker.url, workers, tmp, 5_000, sweeps=False)
        watcher = threading.Thread(target=watch, name="bench-watch", daemon=True)
        try:
            pub = MqttClient(broker.url, f"bench-pub-{uuid.uuid4().hex[:6]}")
            pub.connect()
            wait_for_workers(engine, tenant_id, pub, tenant, devs)
            watcher.start()
            rng = random.Random(3)
            topics = [f"shequ/{tenant}/{d[0]}/telemetry" for d in devs]
            values = [json.dumps({k: round(rng.uniform(lo, min(hi, 39.0) if k == "temperature_c" else hi), 2)
                                  for k, (lo, hi) in d[2].items()}, separators=(",", ":")) for d in devs]
            run = uuid.uuid4().hex[:6]
            total = rate * seconds
            chunk = max(1, rate // 100)  # publish every 10 ms
            smoke_every = max(1, total // n_smoke)
            started = time.perf_counter()
            sent_smoke = 0
            for i in range(0, total, chunk):
                due = started + i / rate
                while (wait := due - time.perf_counter()) > 0:
                    pub.poll(min(wait, 0.005))
                ts = now_ms()
                for j in range(i, min(total, i + chunk)):
                    k = j % len(devs)
                    pub.publish(topics[k], f'{{"id":"{run}-{j}","ts":{ts},"v":{values[k]},"tk":"{devs[k][1]}"}}'
                                .encode(), flush=False)
                    if j % smoke_every == 0 and sent_smoke < n_smoke:
                        dcode, token = smokes[sent_smoke]
                        sent_smoke += 1
                        pub.publish(f"shequ/{tenant}/{dcode}/telemetry",
                                    f'{{"id":"{run}-s{j}","ts":{now_ms()},"v":{{"smoke":true}},"tk":"{token}"}}'
                                    .encode(), flush=False)
                pub.flush()
            pub.wait_acked(120)
            published_s = time.perf_counter() - started
            deadline = time.monotonic() + 120
            while len(seen_at) < sent_smoke and time.monotonic() < deadline:
                time.sleep(0.1)
            while _dispatched(engine, tenant_id) < sent_smoke and time.monotonic() < deadline:
                time.sleep(0.1)  # the cases are opened just after their alarms' batches
            pub.close()
        finally:
            stop_watch.set()
            for proc, _ in procs:
                proc.send_signal(signal.SIGTERM)
            for proc, _ in procs:
                proc.wait(30)
    publish_to_alarm = [float(seen_at[a] - source_ms[a]) for a in sorted(seen_at)]
    if os.environ.get("SHEQU_BENCH_TRACE"):
        console.print([int(x) for x in publish_to_alarm])
    with session_scope(tenant_id=tenant_id) as s:
        alarms = list(s.scalars(select(Alarm).where(Alarm.type == "smoke")))
        cases = {c.alarm_id: c for c in s.scalars(select(Case).where(Case.source == "alarm"))}
    to_case = []
    for a in alarms:
        dispatched = cases[a.id].dispatched_at if a.id in cases else None
        if dispatched is not None:
            to_case.append((dispatched - a.raised_at).total_seconds() * 1000)
    figures.update({
        "published_per_second": round((total + sent_smoke) / published_s),
        "smoke_sent": sent_smoke, "alarms": len(alarms), "cases_dispatched": len(to_case),
        "critical": sum(1 for a in alarms if a.severity == "CRITICAL"),
        "publish_to_alarm_p50_ms": _pct(publish_to_alarm, 50), "publish_to_alarm_p99_ms": _pct(publish_to_alarm, 99),
        "publish_to_alarm_max_ms": max(publish_to_alarm, default=float("nan")),
        "alarm_to_dispatch_p99_ms": round(_pct(to_case, 99), 2),
        "alarm_to_dispatch_max_ms": round(max(to_case, default=float("nan")), 2),
    })
    ok = len(alarms) == sent_smoke == len(to_case)
    figures["complete"] = ok
    if as_json:
        print(json.dumps(figures))
    else:
        console.print(figures)
    if not ok:
        raise SystemExit(f"the loop lost work: {sent_smoke} smoke readings, {len(alarms)} alarms, "
                         f"{len(to_case)} dispatched cases")
    return figures


__all__ = ["TYPES", "bench_loop"]
