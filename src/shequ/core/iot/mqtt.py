"""A small MQTT 5 client for the ingest hot path: QoS 0/1, shared subscriptions, manual acks.

Why not a general client library: the worker must acknowledge (PUBACK) a message only after
the batch holding it is committed, read thousands of messages per system call, and send the
acks of a whole batch in one write. The protocol subset that needs is small (CONNECT,
SUBSCRIBE, PUBLISH, PUBACK, PINGREQ, DISCONNECT; OASIS MQTT 5.0), so it is spelled out here
with blocking sockets and no threads. Anything unusual from the broker raises ``MqttError``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14


class MqttError(Exception):
    pass


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 for QoS 0
    dup: bool


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([(kind << 4) | flags]) + _varint(len(body)) + body


def parse_url(url: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp"):
        raise MqttError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt://host:port)")
    return parts.hostname or "127.0.0.1", parts.port or 1883, parts.username, parts.password


class MqttClient:
    """One connection. ``clean=False`` keeps the session (and its queued QoS 1 messages)
    for ``session_expiry`` seconds while the client is away."""

    def __init__(self, url: str, client_id: str, *, clean: bool = True, session_expiry: int = 0,
                 keepalive: int = 30, receive_maximum: int = 65535) -> None:
        self.host, self.port, self.username, self.password = parse_url(url)
        self.client_id = client_id
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.receive_maximum = receive_maximum
        self.sock: socket.socket | None = None
        self._buf = bytearray()
        self._next_id = 0
        self.unacked: set[int] = set()  # our QoS 1 publishes not yet acknowledged by the broker
        self.session_present = False
        self._last_send = 0.0
        self._pending_out: list[bytes] = []  # publishes encoded with flush=False, sent by flush()
        self._last_pid = 0

    # --- connection ------------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock = sock
        flags = 0x02 if self.clean else 0
        props = bytearray()
        if self.session_expiry:
            props += b"\x11" + struct.pack("!I", self.session_expiry)
        props += b"\x21" + struct.pack("!H", self.receive_maximum)
        payload = _str(self.client_id)
        if self.username is not None:
            flags |= 0x80
        if self.password is not None:
            flags |= 0x40
        if self.username is not None:
            payload += _str(self.username)
        if self.password is not None:
            payload += _str(self.password)
        body = _str("MQTT") + bytes([5, flags]) + struct.pack("!H", self.keepalive) \
            + _varint(len(props)) + bytes(props) + payload
        self._send(_packet(CONNECT, 0, body))
        kind, _flags, data = self._read_packet(timeout)
        if kind != CONNACK:
            raise MqttError(f"expected CONNACK, got packet type {kind}")
        self.session_present = bool(data[0] & 1)
        if data[1] != 0:
            raise MqttError(f"broker refused the connection (reason code {data[1]:#x})")

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self._send(_packet(DISCONNECT, 0, b""))
            self.sock.close()
            self.sock = None

    def subscribe(self, topics: Iterable[str], qos: int = 1, timeout: float = 10.0) -> None:
        pid = self._packet_id()
        body = struct.pack("!H", pid) + b"\x00"
        for topic in topics:
            body += _str(topic) + bytes([qos])
        self._send(_packet(SUBSCRIBE, 0x02, body))
        deadline = time.monotonic() + timeout
        while True:
            kind, _flags, data = self._read_packet(max(0.01, deadline - time.monotonic()))
            if kind == SUBACK:
                plen, off = _read_varint(data, 2)
                codes = data[off + plen:]
                if any(c >= 0x80 for c in codes):
                    raise MqttError(f"subscription refused (reason codes {list(codes)})")
                return
            if kind == PUBLISH:  # a persistent session may deliver before SUBACK
                self._buf[:0] = _packet(kind, _flags, data)
                return

    # --- publishing --------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, *, flush: bool = True) -> int:
        data = self.encode_publish(topic, payload, qos)
        if flush:
            self._send(data)
        else:
            self._pending_out.append(data)
        return self._last_pid

    def encode_publish(self, topic: str, payload: bytes, qos: int = 1) -> bytes:
        body = _str(topic)
        if qos:
            pid = self._packet_id()
            self.unacked.add(pid)
            self._last_pid = pid
            body += struct.pack("!H", pid)
        body += b"\x00" + payload  # no properties
        return _packet(PUBLISH, qos << 1, body)

    def flush(self) -> None:
        if self._pending_out:
            self._send(b"".join(self._pending_out))
            self._pending_out.clear()

    def send_raw(self, data: bytes) -> None:
        self._send(data)

    # --- receiving ---------------------------------------------------------------------------
    def poll(self, timeout: float = 0.1, max_messages: int = 100_000) -> list[Message]:
        """Messages that arrived within ``timeout`` (all that are already buffered, at once).
        Also consumes the broker's PUBACKs for our own publishes."""
        out: list[Message] = []
        self._fill(timeout)
        buf = self._buf
        pos = 0
        n = len(buf)
        while pos < n and len(out) < max_messages:
            header = buf[pos]
            mult, length, i = 1, 0, pos + 1
            while i < n:
                b = buf[i]
                i += 1
                length += (b & 0x7F) * mult
                if not b & 0x80:
                    break
                mult *= 128
            else:
                break  # the length itself is incomplete
            end = i + length
            if end > n:
                break  # incomplete packet
            kind = header >> 4
            if kind == PUBLISH:
                qos = (header >> 1) & 3
                tlen = (buf[i] << 8) | buf[i + 1]
                j = i + 2 + tlen
                topic = buf[i + 2:j].decode()
                pid = 0
                if qos:
                    pid = (buf[j] << 8) | buf[j + 1]
                    j += 2
                plen, j = _read_varint(buf, j)
                j += plen
                out.append(Message(topic, bytes(buf[j:end]), qos, pid, bool(header & 0x08)))
            elif kind == PUBACK:
                self.unacked.discard((buf[i] << 8) | buf[i + 1])
            elif kind == DISCONNECT:
                raise MqttError("the broker closed the session")
            pos = end
        if pos:
            del buf[:pos]
        self._keepalive()
        return out

    def ack(self, packet_ids: Iterable[int]) -> None:
        """PUBACK a batch of received QoS 1 messages in one write."""
        data = b"".join(b"\x40\x02" + struct.pack("!H", pid) for pid in packet_ids if pid)
        if data:
            self._send(data)

    def wait_acked(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.unacked:
            if time.monotonic() > deadline:
                raise MqttError(f"{len(self.unacked)} publishes not acknowledged within {timeout} s")
            self.poll(0.05)

    # --- internals ---------------------------------------------------------------------------
    def _packet_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self.unacked:
                return self._next_id
        raise MqttError("no free packet id: 65,535 publishes are in flight")

    def _send(self, data: bytes) -> None:
        if self.sock is None:
            raise MqttError("not connected")
        self.sock.sendall(data)
        self._last_send = time.monotonic()

    def _keepalive(self) -> None:
        if self.keepalive and time.monotonic() - self._last_send > self.keepalive / 2:
            self._send(bytes([PINGREQ << 4, 0]))

    def _fill(self, timeout: float) -> None:
        if self.sock is None:
            raise MqttError("not connected")
        if self._buf or timeout <= 0:  # complete packets may be waiting already: don't block
            self.sock.setblocking(False)
        else:
            self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except (TimeoutError, BlockingIOError, InterruptedError):
            return
        if not chunk:
            raise MqttError("the broker closed the connection")
        self._buf += chunk
        self.sock.setblocking(False)
        try:
            while len(chunk) == 1 << 20 or len(self._buf) < (8 << 20):
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                self._buf += chunk
        except (BlockingIOError, InterruptedError):
            pass

    def _read_packet(self, timeout: float) -> tuple[int, int, bytes]:
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buf) >= 2:
                try:
                    length, off = _read_varint(self._buf, 1)
                except IndexError:
                    length, off = -1, 0
                if length >= 0 and len(self._buf) >= off + length:
                    header = self._buf[0]
                    data = bytes(self._buf[off:off + length])
                    del self._buf[:off + length]
                    if header >> 4 == PINGRESP:
                        continue
                    return header >> 4, header & 0x0F, data
            left = deadline - time.monotonic()
            if left <= 0:
                raise MqttError("timed out waiting for the broker")
            self._fill(left)


def _read_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    mult, value = 1, 0
    while True:
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos
        mult *= 128
