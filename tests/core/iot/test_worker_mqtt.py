"""Workers over a real Mosquitto: QoS 1, acknowledged only after commit, nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from shequ.core.iot.broker import Broker
from shequ.core.iot.mqtt import MqttClient
from shequ.core.iot.pipeline import now_ms
from tests.conftest import require_service
from tests.iot_fixtures import IotWorld, world_fixture


@pytest.fixture
def world(engine: Engine) -> Iterator[IotWorld]:
    yield from world_fixture(engine)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    try:
        b = Broker(tmp_path / "mosquitto").start()
    except RuntimeError as exc:
        require_service("Mosquitto", str(exc))
    yield b
    b.stop()


def start_worker(url: str, client_id: str, batch_max: int = 500) -> subprocess.Popen[bytes]:
    code = "from shequ.cli import app; app()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "worker", "--mqtt-url", url, "--id", client_id, "--batch-max", str(batch_max),
         "--no-sweeps"], env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stored(engine: Engine, tenant_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM telemetry WHERE tenant_id = :t"),
                                {"t": tenant_id}).scalar() or 0)


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def publish(world: IotWorld, url: str, messages: list[tuple[str, bytes]]) -> None:
    pub = MqttClient(url, "test-publisher")
    pub.connect()
    for i, (topic, payload) in enumerate(messages):
        pub.publish(topic, payload, qos=1, flush=False)
        if i % 200 == 199:
            pub.flush()
            while len(pub.unacked) > 5000:
                pub.poll(0.01)
    pub.flush()
    pub.wait_acked(timeout=60)
    pub.close()


def wait_subscribed(world: IotWorld, broker: Broker, worker: subprocess.Popen[bytes]) -> None:
    """The worker is up and subscribed once a probe is stored (sent again until then, same id)."""
    probe = (f"shequ/{world.tenant_code}/WM-301/telemetry", json.dumps(
        {"id": "probe", "ts": now_ms(), "v": {"flow_lpm": 0.0}, "tk": world.tokens["WM-301"]}).encode())
    deadline = time.monotonic() + 30
    while stored(world.engine, world.tenant_id) < 1:
        assert time.monotonic() < deadline, "the worker did not come up"
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        publish(world, broker.url, [probe])
        time.sleep(0.3)


def test_a_worker_killed_halfway_loses_nothing_and_stores_nothing_twice(world: IotWorld, broker: Broker) -> None:
    n = 20_000
    devices = ["WM-301", "SD-301", "SD-302", "DM-301"]
    fields = {"WM-301": ("flow_lpm", 1.5), "SD-301": ("temperature_c", 21.0), "SD-302": ("temperature_c", 22.0),
              "DM-301": ("open", False)}
    worker = start_worker(broker.url, "test-worker-1", batch_max=100)
    try:
        wait_subscribed(world, broker, worker)
        worker.send_signal(signal.SIGSTOP)  # frozen while everything is published: the kill lands mid-stream

        t0 = now_ms() - n
        messages = []
        for i in range(n):
            dev = devices[i % len(devices)]
            name, value = fields[dev]
            body = {"id": f"m{i}", "ts": t0 + i, "v": {name: value}, "tk": world.tokens[dev]}
            messages.append((f"shequ/{world.tenant_code}/{dev}/telemetry", json.dumps(body).encode()))
        publish(world, broker.url, messages)
        worker.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 60
        while stored(world.engine, world.tenant_id) < 2_000:  # some batches committed (and acked)
            assert time.monotonic() < deadline and worker.poll() is None, "the worker made no progress"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        halfway = stored(world.engine, world.tenant_id)
        assert 2_000 <= halfway < n + 1, "the worker was killed too late to test anything"

        worker = start_worker(broker.url, "test-worker-1")  # same id: its session kept the rest
        wait_for(lambda: stored(world.engine, world.tenant_id) >= n + 1, 60, "every message", worker)
        time.sleep(0.5)  # anything redelivered after that is a duplicate and must not be stored
        with world.engine.connect() as conn:
            total, distinct = conn.execute(text(
                "SELECT count(*), count(DISTINCT msg_id) FROM telemetry WHERE tenant_id = :t"),
                {"t": world.tenant_id}).one()
        assert total == distinct == n + 1
    finally:
        worker.terminate()
        worker.wait(10)


def test_bad_messages_over_mqtt_go_to_the_dead_letter_store(world: IotWorld, broker: Broker) -> None:
    worker = start_worker(broker.url, "test-worker-2")
    try:
        wait_subscribed(world, broker, worker)
        now = now_ms()
        t = world.tenant_code
        publish(world, broker.url, [
            (f"shequ/{t}/WM-301/telemetry", b"\xff\xfe not json"),
            (f"shequ/{t}/WM-301/telemetry", json.dumps({"id": "x1", "ts": now, "v": {"flow_lpm": 1.0}}).encode()),
            (f"shequ/{t}/GHOST/telemetry", json.dumps({"id": "x2", "ts": now, "v": {}}).encode()),
            (f"shequ/{t}/WM-301/telemetry", json.dumps(
                {"id": "ok", "ts": now, "v": {"flow_lpm": 1.0}, "tk": world.tokens["WM-301"]}).encode()),
        ])

        def dead() -> list[str]:
            with world.engine.connect() as conn:
                return [r[0] for r in conn.execute(text(
                    "SELECT reason FROM dead_letter WHERE tenant_id = :t ORDER BY id"), {"t": world.tenant_id})]

        wait_for(lambda: len(dead()) == 3 and stored(world.engine, world.tenant_id) == 2, 30,
                 "three dead letters and one stored message", worker)
        assert sorted(dead()) == ["bad_json", "bad_token", "unknown_device"]
    finally:
        worker.terminate()
        worker.wait(10)
