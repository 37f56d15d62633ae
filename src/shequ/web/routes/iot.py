"""Routes of things (物): device types, a device's twin, history, events, credentials,
maintenance and commands; HTTP ingest with a device token; dead letters; Prometheus /metrics;
and the device and dead-letter pages.

Routes that name a device first find it through the scoped session (404 for a device out of
scope, like a record that does not exist) and only then check the permission, so a refusal
never tells whether a device of another area exists.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iot import commands as cmds
from shequ.core.iot import service
from shequ.core.iot.models import CONDITIONS, DEAD_REASONS, DeadLetter, Device, DeviceCommand
from shequ.core.iot.types import device_types, get_type
from shequ.web.deps import (
    SHANGHAI,
    ApiUser,
    PageUser,
    SessionDep,
    client_ip,
    ensure_can,
    lang_of,
    render,
    require,
)
from shequ.web.records import MAX_ID, BadParam, RecordId
from shequ.web.security import csrf_protect

api = APIRouter(tags=["iot"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
metrics_router = APIRouter(include_in_schema=False)

MAX_MESSAGES = 5_000
MAX_BYTES = 5 * 1024 * 1024
CommandId = Annotated[int, Path(ge=1, le=MAX_ID, description="command id")]
LetterId = Annotated[int, Path(ge=1, le=MAX_ID, description="dead letter id")]

ApiDeviceReader = Annotated[User, Depends(require(iam.DEVICE_READ, api=True))]
ApiDeadLetters = Annotated[User, Depends(require(iam.DEAD_LETTERS, api=True))]
PageDeviceReader = Annotated[User, Depends(require(iam.DEVICE_READ, api=False))]
PageDeadLetters = Annotated[User, Depends(require(iam.DEAD_LETTERS, api=False))]


def _not_found(what: str, ident: object) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{what} {ident} 不存在 (not found)")


def _api_device(record_id: RecordId, session: SessionDep, user: ApiUser) -> Device:
    device = service.get_device(session=session, device_id=record_id)
    if device is None:
        raise _not_found("设备", record_id)
    return device


def _page_device(record_id: RecordId, session: SessionDep, user: PageUser) -> Device:
    device = service.get_device(session=session, device_id=record_id)
    if device is None:
        raise _not_found("设备", record_id)
    return device


ApiDevice = Annotated[Device, Depends(_api_device)]
PageDevice = Annotated[Device, Depends(_page_device)]


# --- schemas ---------------------------------------------------------------------------------

class AttrOut(BaseModel):
    name: str
    label: str
    unit: str
    type: str
    value: Any = None


class DeviceStateOut(BaseModel):
    device_id: int
    code: str
    type_code: str
    type_name: str
    status: str = Field(description="active | maintenance | retired")
    condition: str = Field(description="alarm | fault | offline | maintenance | ok | unknown")
    online: bool
    seen_at: dt.datetime | None
    reported_at: dt.datetime | None
    changed_at: dt.datetime | None
    attrs: list[AttrOut]


class HistoryOut(BaseModel):
    grain: str = Field(description="raw | m | h | d")
    field: str
    points: list[dict[str, Any]] = Field(description="raw: {t, v}; rollups: {t, n, avg, min, max, last}; t in epoch ms")


class EventOut(BaseModel):
    at: dt.datetime | None
    ts: int
    type: str
    label: str
    alarm: bool
    data: dict[str, Any]


class TokenIssued(BaseModel):
    device_id: int
    token: str = Field(description="shown this once; only its keyed hash is stored")
    hint: str
    issued_at: dt.datetime


class TokenRevoked(BaseModel):
    device_id: int
    revoked_at: dt.datetime


class MaintenanceIn(BaseModel):
    on: bool
    note: str = Field(default="", max_length=300)


class MaintenanceOut(BaseModel):
    device_id: int
    status: str
    note: str | None
    condition: str


class CommandIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    args: dict[str, Any] = Field(default_factory=dict)


class CommandOut(BaseModel):
    id: int
    device_id: int
    name: str
    args: dict[str, Any]
    status: str = Field(description="pending | sent | acked | failed | timed_out")
    created_at: dt.datetime
    sent_at: dt.datetime | None
    replied_at: dt.datetime | None
    deadline: dt.datetime
    result: dict[str, Any] | None
    actor: str
    source: str


class IngestResult(BaseModel):
    index: int
    status: str = Field(description="accepted | duplicate | dead")
    reason: str = ""
    detail: str = ""


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    dead: int
    results: list[IngestResult]


class DeadLetterOut(BaseModel):
    id: int
    received_at: dt.datetime
    transport: str
    topic: str
    device_code: str | None
    device_id: int | None
    reason: str
    reason_label: str
    detail: str


class DeadLetterDetail(DeadLetterOut):
    payload: str = Field(description="the bytes received (at most 64 KiB) as text")


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    total: int
    page: int
    size: int
    counts: dict[str, int] = Field(description="dead letters per reason (same filters but reason)")


def _command_out(cmd: DeviceCommand) -> CommandOut:
    return CommandOut(id=cmd.id, device_id=cmd.device_id, name=cmd.name, args=cmd.args or {}, status=cmd.status,
                      created_at=cmd.created_at, sent_at=cmd.sent_at, replied_at=cmd.replied_at,
                      deadline=cmd.deadline, result=cmd.result, actor=cmd.actor, source=cmd.source)


def _letter_out(letter: DeadLetter, lang: str) -> dict[str, Any]:
    label = DEAD_REASONS.get(letter.reason, letter.reason)
    zh, _, en = label.partition(" / ")
    return {"id": letter.id, "received_at": letter.received_at, "transport": letter.transport,
            "topic": letter.topic, "device_code": letter.device_code, "device_id": letter.device_id,
            "reason": letter.reason, "reason_label": zh if lang.startswith("zh") or not en else en,
            "detail": letter.detail}


# --- API: device types -----------------------------------------------------------------------

@api.get("/device-types", summary="Every device type: telemetry fields, events and commands")
def list_device_types(user: ApiDeviceReader) -> Any:
    return {"items": [t.as_dict() for t in sorted(device_types().values(), key=lambda t: t.code)]}


@api.get("/device-types/{type_code}", summary="One device type")
def get_device_type(type_code: str, user: ApiDeviceReader) -> Any:
    dtype = get_type(type_code)
    if dtype is None:
        raise _not_found("设备类型", type_code)
    return dtype.as_dict()


# --- API: one device -------------------------------------------------------------------------

@api.get("/devices/{record_id:int}/state", response_model=DeviceStateOut,
         summary="The twin of a device: condition, online, each attribute with unit and label")
def get_state(request: Request, device: ApiDevice, session: SessionDep, user: ApiDeviceReader) -> Any:
    return service.device_state(session=session, device=device, lang=lang_of(request))


def _when(field: str, raw: str | None) -> dt.datetime | None:
    if raw in (None, ""):
        return None
    try:
        if raw.lstrip("-").isdigit():
            return dt.datetime.fromtimestamp(int(raw) / 1000, dt.UTC)
        value = dt.datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError):
        raise BadParam(field, f"应为 ISO 8601 时间或毫秒时间戳，收到 {raw!r}（ISO 8601 or epoch ms）") from None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


@api.get("/devices/{record_id:int}/telemetry", response_model=HistoryOut,
         summary="History of one numeric field (raw points or minute/hour/day rollups)",
         description="start/end: ISO 8601 (without an offset: Asia/Shanghai) or epoch ms; default the last "
                     "24 hours. grain auto picks raw points for short ranges and rollups for long ones.")
def get_telemetry(device: ApiDevice, session: SessionDep, user: ApiDeviceReader,
                  field: Annotated[str | None, Query(max_length=60)] = None,
                  start: Annotated[str | None, Query(max_length=40)] = None,
                  end: Annotated[str | None, Query(max_length=40)] = None,
                  grain: Annotated[str, Query(pattern="^(auto|raw|m|h|d)$")] = "auto") -> Any:
    end_at = _when("end", end) or dt.datetime.now(dt.UTC)
    start_at = _when("start", start) or end_at - dt.timedelta(hours=24)
    chosen = field or next(iter(service.measures(device)), "")
    try:
        return service.history(session=session, device=device, field=chosen, start=start_at, end=end_at,
                               grain=grain)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        raise BadParam(name if name in ("field", "grain", "end") else "field", str(exc)) from None


@api.get("/devices/{record_id:int}/events", response_model=list[EventOut], summary="The device's latest events")
def get_events(device: ApiDevice, session: SessionDep, user: ApiDeviceReader,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    return service.events(session=session, device=device, limit=limit)


@api.post("/devices/{record_id:int}/token", response_model=TokenIssued,
          summary="Issue or rotate the device's token: returned this once; the old one stops working (audited)")
def post_token(request: Request, device: ApiDevice, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.DEVICE_MANAGE)
    token = service.rotate_token(session=session, device=device, actor=user.username, ip=client_ip(request))
    return TokenIssued(device_id=device.id, token=token, hint=device.token_hint or "",
                       issued_at=device.token_issued_at or dt.datetime.now(dt.UTC))


@api.delete("/devices/{record_id:int}/token", response_model=TokenRevoked,
            summary="Revoke the device's token (audited)")
def delete_token(request: Request, device: ApiDevice, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.DEVICE_MANAGE)
    service.revoke_token(session=session, device=device, actor=user.username, ip=client_ip(request))
    return TokenRevoked(device_id=device.id, revoked_at=device.token_revoked_at or dt.datetime.now(dt.UTC))


@api.put("/devices/{record_id:int}/maintenance", response_model=MaintenanceOut,
         summary="Put a device into maintenance or back to active; its twin condition follows")
def put_maintenance(device: ApiDevice, body: MaintenanceIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.DEVICE_MANAGE)
    try:
        service.set_maintenance(session=session, device=device, on=body.on, note=body.note)
    except ValueError as exc:
        raise BadParam("on", str(exc)) from None
    state = service.device_state(session=session, device=device)
    return MaintenanceOut(device_id=device.id, status=device.status, note=device.maintenance_note,
                          condition=state["condition"])


@api.post("/devices/{record_id:int}/commands", response_model=CommandOut, status_code=201,
          summary="Send a command (checked against the device type); tracked as sent, acked, failed or timed out")
def post_command(device: ApiDevice, body: CommandIn, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.DEVICE_COMMAND)
    cmd = cmds.send_command(session=session, device=device, name=body.name, args=body.args,
                            actor=user.username)
    return _command_out(cmd)


@api.get("/devices/{record_id:int}/commands", response_model=list[CommandOut],
         summary="The device's latest commands, newest first")
def get_commands(device: ApiDevice, session: SessionDep, user: ApiDeviceReader,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    return [_command_out(c) for c in cmds.list_commands(session=session, device_id=device.id, limit=limit)]


@api.get("/commands/{command_id:int}", response_model=CommandOut, summary="One command and what became of it")
def get_command(command_id: CommandId, session: SessionDep, user: ApiDeviceReader) -> Any:
    cmd = cmds.get_command(session=session, command_id=command_id)
    if cmd is None:
        raise _not_found("命令", command_id)
    return _command_out(cmd)


# --- API: HTTP ingest ------------------------------------------------------------------------

INGEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["messages"],
    "properties": {"messages": {"type": "array", "maxItems": MAX_MESSAGES, "items": {
        "type": "object", "required": ["kind", "id", "ts"],
        "properties": {"kind": {"type": "string", "enum": ["telemetry", "event", "status", "reply"]},
                       "id": {"type": ["string", "integer"]}, "ts": {"type": ["integer", "string"]}},
        "additionalProperties": True}}}}}}}}


@api.post("/ingest", response_model=IngestOut, openapi_extra=INGEST_BODY,
          summary="A device sends a batch of messages with its own token (Authorization: Bearer <device token>)",
          description=f"At most {MAX_MESSAGES:,} messages and 5 MB (413 beyond). Each message is "
                      "{\"kind\": telemetry|event|status|reply, \"id\", \"ts\", …} (see docs/iot.md). A bad "
                      "message never sinks the batch: it is dead-lettered with its reason and reported by index.",
          responses={401: {"description": "no valid device token (the request is dead-lettered as bad_token)"},
                     413: {"description": "too many messages or too large"}})
async def ingest(request: Request, session: SessionDep) -> Any:
    from shequ.core.iot.pipeline import Inbound, default_pipeline
    from shequ.db import get_engine
    from shequ.web.deps import bearer_token

    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        return JSONResponse({"detail": "报文过大 (body larger than 5 MB)"}, status_code=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            return JSONResponse({"detail": "报文过大 (body larger than 5 MB)"}, status_code=413)
        chunks.append(chunk)
    body = b"".join(chunks)
    engine = get_engine()
    pipeline = default_pipeline(engine)
    token = bearer_token(request) or ""
    # the request's own session: reads the token, and keeps a refused request as a dead letter of
    # the tenant it came to (committed with the request)
    conn = session.connection()
    device = pipeline.devices.by_token(conn, token) if token else None
    if device is None:
        from shequ.web.deps import client_ip

        service.store_bad_token(conn, tenant_id=session.info.get("tenant_id"), payload=body,
                                detail="no device token" if not token else "the token names no device",
                                address=client_ip(request))
        return JSONResponse({"detail": "需要有效的设备令牌 (a valid device token is required)"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadParam("body", f"不是合法 JSON (malformed JSON: {exc})") from None
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list):
        raise BadParam("messages", "应为消息数组 (must be a list of messages)")
    if len(messages) > MAX_MESSAGES:
        return JSONResponse({"detail": f"一次最多 {MAX_MESSAGES} 条 (at most {MAX_MESSAGES} messages)"},
                            status_code=413)
    session.commit()  # the pipeline writes in its own transactions; hold no lock meanwhile
    # every message goes through the pipeline, which dead-letters what is not a message (not an
    # object, no kind) like any other bad message; the answer names each one by its index
    batch = [Inbound(payload=json.dumps(message, ensure_ascii=False).encode(),
                     kind=(message.get("kind") if isinstance(message, dict) else None) or "",
                     tenant=device.tenant_code, device=device.code, token=token, transport="http",
                     device_id=device.id)
             for message in messages]
    outcome = pipeline.process(batch) if batch else None
    accepted = outcome.accepted if outcome else 0
    duplicates = outcome.duplicates if outcome else 0
    dead = outcome.dead if outcome else 0
    results = [IngestResult(index=index, status=r.status, reason=r.reason,
                            detail=f"messages[{index}]: {r.detail}" if r.status == "dead" else r.detail)
               for index, r in enumerate(outcome.outcomes if outcome else [])]
    return IngestOut(accepted=accepted, duplicates=duplicates, dead=dead, results=results)


# --- API: dead letters -----------------------------------------------------------------------

def _letters(request: Request, session: Any, reason: str | None, device: str | None, since: str | None,
             page: int, size: int) -> tuple[Any, dict[str, int]]:
    since_at = _when("since", since)
    try:
        found = service.dead_letters(session=session, reason=reason or None, device=device or None,
                                     since=since_at, page=page, size=size)
    except ValueError as exc:
        raise BadParam("reason", str(exc)) from None
    counts = service.dead_letter_counts(session=session, since=since_at)
    return found, counts


@api.get("/dead-letters", response_model=DeadLetterPage, summary="Messages that could not be accepted, newest first",
         description=f"reason: one of {', '.join(DEAD_REASONS)}; device: a device code (or part); since: ISO 8601")
def list_dead_letters(request: Request, session: SessionDep, user: ApiDeadLetters,
                      reason: Annotated[str | None, Query(max_length=20)] = None,
                      device: Annotated[str | None, Query(max_length=64)] = None,
                      since: Annotated[str | None, Query(max_length=40)] = None,
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                      size: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    found, counts = _letters(request, session, reason, device, since, page, size)
    lang = lang_of(request)
    return {"items": [_letter_out(x, lang) for x in found.items], "total": found.total, "page": found.page,
            "size": found.size, "counts": counts}


@api.get("/dead-letters/{letter_id:int}", response_model=DeadLetterDetail, summary="One dead letter with its payload")
def get_dead_letter(request: Request, letter_id: LetterId, session: SessionDep, user: ApiDeadLetters) -> Any:
    letter = service.dead_letter(session=session, letter_id=letter_id)
    if letter is None:
        raise _not_found("死信", letter_id)
    return {**_letter_out(letter, lang_of(request)), "payload": service.payload_text(letter.payload)}


# --- /metrics --------------------------------------------------------------------------------

@metrics_router.get("/metrics")
def metrics() -> Response:
    """Prometheus text: the pipeline's counters of this process, and figures read from the database."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

    from shequ.core.iot import metrics as iot_metrics
    from shequ.db import get_engine

    figures = service.scrape_figures(get_engine())
    scrape = CollectorRegistry(auto_describe=True)
    total = Gauge("shequ_devices", "Registered devices per tenant", ["tenant"], registry=scrape)
    online = Gauge("shequ_devices_online", "Devices online per tenant", ["tenant"], registry=scrape)
    dead = Gauge("shequ_dead_letters_last_hour", "Dead letters received in the last hour, by tenant and reason",
                 ["tenant", "reason"], registry=scrape)
    for code, (n, up) in figures["devices"].items():
        total.labels(code).set(n)
        online.labels(code).set(up)
    for (code, reason), n in figures["dead_last_hour"].items():
        dead.labels(code, reason).set(n)
    body = generate_latest(iot_metrics.REGISTRY) + generate_latest(scrape)
    return PlainTextResponse(body.decode(), media_type=CONTENT_TYPE_LATEST)


# --- pages -----------------------------------------------------------------------------------

def _qs(request: Request, **change: Any) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in change and v != ""]
    items += [(k, str(v)) for k, v in change.items() if v not in (None, "")]
    return urlencode(items)


@pages.get("/iot/devices")
def devices_page(request: Request, session: SessionDep, user: PageDeviceReader,
                 type: Annotated[str, Query(max_length=40)] = "",
                 condition: Annotated[str, Query(max_length=12)] = "",
                 online: Annotated[str, Query(pattern="^(|yes|no)$")] = "",
                 q: Annotated[str, Query(max_length=100)] = "",
                 page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    lang = lang_of(request)
    error = ""
    if condition and condition not in CONDITIONS:
        error, condition = f"condition: {condition!r}", ""
    found = service.list_devices(session=session, type_code=type or None, condition=condition or None,
                                 online={"yes": True, "no": False}.get(online), q=q or None, page=page)
    types = sorted(((t.code, service.type_name(t, t.code, lang)) for t in device_types().values()),
                   key=lambda x: x[0])
    rows = []
    for device, state in found.items:
        dtype = get_type(device.type_code)
        rows.append({"device": device, "type_name": service.type_name(dtype, device.type_code, lang),
                     "condition": state.condition if state else "unknown",
                     "online": bool(state.online) if state else False,
                     "seen_at": service.ms_to_datetime(state.seen_ms) if state else None})
    context: dict[str, Any] = {"rows": rows, "page": found, "types": types, "conditions": CONDITIONS, "error": error,
               "f": {"type": type, "condition": condition, "online": online, "q": q},
               "qs": lambda **kw: _qs(request, **kw)}
    partial = request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request")
    response = render(request, "iot/_devices.html" if partial else "iot/devices.html", **context)
    response.headers["Vary"] = "HX-Request"
    return response


def _detail_context(request: Request, session: Any, user: User, device: Device, *, measure: str = "",
                    token: str = "", message: str = "", error: str = "") -> dict[str, Any]:
    from shequ.core.places.models import Place

    lang = lang_of(request)
    dtype = get_type(device.type_code)
    state = service.device_state(session=session, device=device, lang=lang)
    options = service.measures(device)
    chosen = measure if measure in options else (options[0] if options else "")
    history: dict[str, Any] = {"points": [], "grain": ""}
    if chosen:
        end = dt.datetime.now(dt.UTC)
        history = service.history(session=session, device=device, field=chosen, start=end - dt.timedelta(hours=24),
                                  end=end, grain="auto")
    points = [{**p, "at": dt.datetime.fromtimestamp(p["t"] / 1000, dt.UTC)} for p in history["points"][-48:]]
    place = session.scalar(select(Place).where(Place.id == device.place_id)) if device.place_id else None
    return {
        "device": device, "dtype": dtype, "type_name": service.type_name(dtype, device.type_code, lang),
        "state": state, "place": place, "measures": options, "measure": chosen, "grain": history["grain"],
        "points": points, "events": service.events(session=session, device=device, limit=20),
        "commands": cmds.list_commands(session=session, device_id=device.id, limit=20),
        "command_specs": list(dtype.commands) if dtype else [],
        "may_command": iam.can(user, iam.DEVICE_COMMAND), "may_manage": iam.can(user, iam.DEVICE_MANAGE),
        "new_token": token, "message": message, "error": error, "label_of": service.label_of,
    }


@pages.get("/iot/devices/{record_id:int}")
def device_page(request: Request, device: PageDevice, session: SessionDep, user: PageDeviceReader,
                measure: Annotated[str, Query(max_length=60)] = "") -> Response:
    return render(request, "iot/device.html", **_detail_context(request, session, user, device, measure=measure))


@pages.post("/iot/devices/{record_id:int}/token")
def rotate_page(request: Request, device: PageDevice, session: SessionDep, user: PageUser) -> Response:
    ensure_can(user, iam.DEVICE_MANAGE)
    token = service.rotate_token(session=session, device=device, actor=user.username, ip=client_ip(request))
    return render(request, "iot/device.html", **_detail_context(request, session, user, device, token=token))


@pages.post("/iot/devices/{record_id:int}/token/revoke")
def revoke_page(request: Request, device: PageDevice, session: SessionDep, user: PageUser) -> Response:
    ensure_can(user, iam.DEVICE_MANAGE)
    service.revoke_token(session=session, device=device, actor=user.username, ip=client_ip(request))
    return RedirectResponse(f"/iot/devices/{device.id}", status_code=303)


@pages.post("/iot/devices/{record_id:int}/maintenance")
def maintenance_page(request: Request, device: PageDevice, session: SessionDep, user: PageUser,
                     on: Annotated[str, Form()] = "", note: Annotated[str, Form(max_length=300)] = "") -> Response:
    ensure_can(user, iam.DEVICE_MANAGE)
    try:
        service.set_maintenance(session=session, device=device, on=on in ("1", "on", "true"), note=note)
    except ValueError as exc:
        return render(request, "iot/device.html", status_code=422,
                      **_detail_context(request, session, user, device, error=str(exc)))
    return RedirectResponse(f"/iot/devices/{device.id}", status_code=303)


@pages.post("/iot/devices/{record_id:int}/commands")
async def command_page(request: Request, device: PageDevice, session: SessionDep, user: PageUser) -> Response:
    ensure_can(user, iam.DEVICE_COMMAND)
    form = await request.form()
    name = str(form.get("name") or "")
    dtype = get_type(device.type_code)
    spec = dtype.commands_by_name.get(name) if dtype else None
    args: dict[str, Any] = {}
    error = ""
    for arg in spec.args if spec else ():
        raw = str(form.get(f"arg_{arg.name}") or "").strip()
        if raw == "":
            continue
        try:
            args[arg.name] = (int(raw) if arg.type == "int" else float(raw) if arg.type == "float" else
                              raw.lower() in ("1", "true", "on", "是") if arg.type == "bool" else raw)
        except ValueError:
            error = f"args.{arg.name}: {raw!r}"
    if not error:
        try:
            cmds.send_command(session=session, device=device, name=name, args=args, actor=user.username)
        except cmds.CommandRefused as exc:
            error = str(exc)
    if error:
        return render(request, "iot/device.html", status_code=422,
                      **_detail_context(request, session, user, device, error=error))
    return RedirectResponse(f"/iot/devices/{device.id}", status_code=303)


@pages.get("/iot/dead-letters")
def dead_letters_page(request: Request, session: SessionDep, user: PageDeadLetters,
                      reason: Annotated[str, Query(max_length=20)] = "",
                      device: Annotated[str, Query(max_length=64)] = "",
                      since: Annotated[str, Query(max_length=40)] = "",
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    lang = lang_of(request)
    error = ""
    try:
        found, counts = _letters(request, session, reason, device, since, page, 50)
    except BadParam as exc:
        error = str(exc)
        found, counts = _letters(request, session, None, None, None, 1, 50)
    reasons = [(code, _letter_out(DeadLetter(reason=code), lang)["reason_label"]) for code in DEAD_REASONS]
    return render(request, "iot/dead_letters.html", page=found, counts=counts, reasons=reasons, error=error,
                  items=[_letter_out(x, lang) for x in found.items],
                  f={"reason": reason, "device": device, "since": since},
                  qs=lambda **kw: _qs(request, **kw))


@pages.get("/iot/dead-letters/{letter_id:int}")
def dead_letter_page(request: Request, letter_id: LetterId, session: SessionDep, user: PageDeadLetters) -> Response:
    letter = service.dead_letter(session=session, letter_id=letter_id)
    if letter is None:
        raise _not_found("死信", letter_id)
    return render(request, "iot/dead_letter.html", letter=_letter_out(letter, lang_of(request)),
                  payload=service.payload_text(letter.payload))
