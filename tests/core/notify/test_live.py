"""The live stream against real servers: two uvicorn processes on the same database; a stream
on each receives a notification written by a third process (this test, with session_scope)
within 2 s — through LISTEN/NOTIFY on PostgreSQL, by polling the table on SQLite."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from shequ.core.events import emit
from shequ.core.iam import service as iam
from shequ.core.notify import listeners
from shequ.core.notify.models import Notification
from shequ.core.places.service import create_tenant
from shequ.db import session_scope
from tests.core.notify.conftest import PASSWORD

pytestmark = pytest.mark.slow
ARRIVAL_S = 2.0


@dataclass
class Live:
    tenant_id: int
    tenant_code: str
    users: dict[str, int]
    tokens: dict[str, str]
    servers: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(log: Path, tenant_code: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "SHEQU_DEFAULT_TENANT": tenant_code}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "shequ.web.app:create_app", "--factory",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def live(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    listeners.install()
    code = f"L{uuid.uuid4().hex[:8]}"
    with session_scope(engine=engine) as s:
        tenant_id = create_tenant(session=s, code=code, name="实时街道").id
    users, tokens = {}, {}
    with session_scope(tenant_id=tenant_id, actor="test", engine=engine) as s:
        for name, role in (("dispatcher", "dispatcher"), ("leader", "leader")):
            user = iam.create_user(session=s, username=name, password=PASSWORD, role=role)
            users[name] = user.id
            tokens[name] = iam.create_api_token(session=s, user=user, days=1)
    world = Live(tenant_id, code, users, tokens)
    procs = []
    logs = tmp_path_factory.mktemp("servers")
    for n in (1, 2):
        proc, base = _serve(logs / f"server{n}.log", code)
        procs.append((proc, base, logs / f"server{n}.log"))
    try:
        for proc, base, log in procs:
            _ready(base, proc, log)
            world.servers.append(base)
        yield world
    finally:
        for proc, _, _ in procs:
            proc.terminate()
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class Stream:
    """An SSE client in a thread: parsed events land in a queue."""

    def __init__(self, url: str, headers: dict[str, str], cookies: httpx.Cookies | None = None):
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0), cookies=cookies)
        self._url = url
        self._headers = {"Accept": "text/event-stream", **headers}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as response:
                self.status = response.status_code
                event: dict[str, Any] = {}
                for line in response.iter_lines():
                    if line == "":
                        if event:
                            self.events.put(event)
                        event = {}
                    elif line.startswith(":"):
                        self.events.put({"comment": line[1:].strip()})
                    else:
                        key, _, value = line.partition(":")
                        event[key] = value[1:] if value.startswith(" ") else value
        except (httpx.HTTPError, RuntimeError):
            pass

    def next(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next event of a kind within ``timeout`` seconds (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} event within {timeout} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.get("event") == kind:
                return event

    def close(self) -> None:
        self._client.close()


def bearer(live: Live, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.tokens[name]}"}


def write_alarm(engine: Engine, live: Live, title: str) -> int:
    """A third process writes: an alarm event whose notification goes to the dispatcher."""
    with session_scope(tenant_id=live.tenant_id, actor="test", engine=engine) as s:
        emit(s, "alarm.raised", {"alarm_id": 5, "type": "smoke", "severity": "MAJOR", "title": title,
                                 "grid_id": None, "committee_id": None, "compound_id": None, "actor": "system"})
        s.flush()
        return int(s.scalar(select(Notification.id).where(Notification.user_id == live.users["dispatcher"])
                            .order_by(Notification.id.desc()).limit(1)) or 0)


def test_streams_on_two_servers_receive_a_notification_written_elsewhere(engine: Engine, live: Live) -> None:
    streams = [Stream(f"{base}/api/v1/notifications/stream", bearer(live, "dispatcher")) for base in live.servers]
    try:
        for stream in streams:
            first = stream.next("unread", 10)
            assert stream.status == 200 and "unread" in json.loads(first["data"])
        started = time.monotonic()
        note_id = write_alarm(engine, live, "3号楼烟感报警")
        for stream in streams:
            event = stream.next("notification", ARRIVAL_S - (time.monotonic() - started) + 0.05)
            data = json.loads(event["data"])
            assert event["id"] == str(note_id) == str(data["id"])
            assert data["title"] == "新告警：3号楼烟感报警" and data["unread"] >= 1
        assert time.monotonic() - started < ARRIVAL_S
    finally:
        for stream in streams:
            stream.close()


def test_a_user_receives_only_their_own_notifications(engine: Engine, live: Live) -> None:
    leader = Stream(f"{live.servers[0]}/api/v1/notifications/stream", bearer(live, "leader"))
    try:
        leader.next("unread", 10)
        write_alarm(engine, live, "只发给调度员")  # the leader is not told of a level-0 alarm
        with pytest.raises(AssertionError, match="no notification"):
            leader.next("notification", 1.5)
    finally:
        leader.close()


def test_last_event_id_sends_what_was_missed(engine: Engine, live: Live) -> None:
    before = write_alarm(engine, live, "断线前")
    missed = [write_alarm(engine, live, f"断线期间 {n}") for n in (1, 2)]
    stream = Stream(f"{live.servers[1]}/api/v1/notifications/stream",
                    {**bearer(live, "dispatcher"), "Last-Event-ID": str(before)})
    try:
        got = [int(stream.next("notification", 5)["id"]) for _ in missed]
        assert got == missed
    finally:
        stream.close()


def test_the_page_stream_serves_the_cookie_session(engine: Engine, live: Live) -> None:
    base = live.servers[0]
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        page = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        done = browser.post("/login", data={"username": "dispatcher", "password": PASSWORD,
                                            "csrf_token": csrf.group(1), "next": "/"})
        assert done.status_code == 303
        assert '<script src="/static/live.js" defer></script>' in browser.get("/notifications").text
        stream = Stream(f"{base}/notifications/stream", {}, cookies=browser.cookies)
        try:
            stream.next("unread", 10)
            note_id = write_alarm(engine, live, "页面实时")
            assert stream.next("notification", ARRIVAL_S)["id"] == str(note_id)
        finally:
            stream.close()


def test_a_plain_get_is_refused_rather_than_left_hanging(live: Live) -> None:
    base = live.servers[0]
    answer = httpx.get(f"{base}/api/v1/notifications/stream", headers=bearer(live, "dispatcher"), timeout=5)
    assert answer.status_code == 406
    assert httpx.get(f"{base}/api/v1/notifications/stream", timeout=5,
                     headers={"Accept": "text/event-stream"}).status_code == 401
