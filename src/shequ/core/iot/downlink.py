"""Downlink: how a command reaches a device — the MQTT broker, or an in-process bus.

``shequ demo`` without a broker runs devices (the simulator) in the same process: commands go
over ``LocalDownlink``, whose subscribers are called synchronously. With ``SHEQU_MQTT_URL`` set,
commands are published QoS 1 on ``shequ/{tenant}/{device}/command``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from shequ.config import get_settings
from shequ.core.iot.mqtt import MqttClient

Subscriber = Callable[[str, str, bytes], None]


def command_topic(tenant_code: str, device_code: str) -> str:
    return f"shequ/{tenant_code}/{device_code}/command"


class Downlink(Protocol):
    def send(self, tenant_code: str, device_code: str, payload: bytes) -> None: ...


class LocalDownlink:
    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> None:
        self.subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        if fn in self.subscribers:
            self.subscribers.remove(fn)

    def send(self, tenant_code: str, device_code: str, payload: bytes) -> None:
        for fn in list(self.subscribers):
            fn(tenant_code, device_code, payload)


class MqttDownlink:
    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._client: MqttClient | None = None

    def send(self, tenant_code: str, device_code: str, payload: bytes) -> None:
        with self._lock:
            if self._client is None:
                import os

                self._client = MqttClient(self.url, f"shequ-downlink-{os.getpid()}")
                self._client.connect()
            try:
                self._client.publish(command_topic(tenant_code, device_code), payload, qos=1)
                self._client.wait_acked(timeout=5)
            except Exception:
                self._client.close()
                self._client = None
                raise


_local = LocalDownlink()
_mqtt: dict[str, MqttDownlink] = {}


def local_downlink() -> LocalDownlink:
    return _local


def get_downlink() -> Downlink:
    url = get_settings().mqtt_url
    if not url:
        return _local
    if url not in _mqtt:
        _mqtt[url] = MqttDownlink(url)
    return _mqtt[url]
