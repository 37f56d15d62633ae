"""Routes of the rules package: the API (under /api/v1) and the pages.

Rules are data of the whole tenant (not placed): reading them needs RULE_READ, changing them
RULE_MANAGE. Every save goes through ``service.save_rule`` (validated, a new version each time);
a rule that does not validate is answered 422 naming the field (``spec.op``, ``actions``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from shequ.core.alarms.models import SEVERITIES
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.rules import actions as rule_actions
from shequ.core.rules import service
from shequ.core.rules.kinds import COMPOSITE_LABEL, KINDS, CompositeSpec, Window
from shequ.core.rules.models import Rule
from shequ.core.rules.schemas import (
    ActionKindOut,
    DryRunIn,
    DryRunOut,
    InstalledOut,
    KindOut,
    RuleDetail,
    RuleIn,
    RuleKindsOut,
    RuleList,
    RuleOut,
    RulePatch,
    RuleVersionOut,
)
from shequ.core.rules.service import RULE_FIELDS, RuleError
from shequ.web import i18n
from shequ.web.deps import ApiUser, PageUser, SessionDep, ensure_can, lang_of, render, require
from shequ.web.records import MAX_ID, BadParam
from shequ.web.security import csrf_protect

api = APIRouter(tags=["rules"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

RuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="rule id")]
ApiRuleReader = Annotated[User, Depends(require(iam.RULE_READ, api=True))]
ApiRuleManager = Annotated[User, Depends(require(iam.RULE_MANAGE, api=True))]
PageRuleReader = Annotated[User, Depends(require(iam.RULE_READ, api=False))]
PageRuleManager = Annotated[User, Depends(require(iam.RULE_MANAGE, api=False))]
KIND_CODES = (*KINDS, "composite")
FIRST_EVENTS = 20  # dry-run moments shown on the page

i18n.extend({
    "rules.title": ("规则", "Rules"),
    "rules.new": ("新建规则", "New rule"),
    "rules.code": ("编码", "Code"),
    "rules.name": ("名称", "Name"),
    "rules.kind": ("类型", "Kind"),
    "rules.scenario": ("场景", "Scenario"),
    "rules.kernel": ("内核", "kernel"),
    "rules.enabled": ("启用", "Enabled"),
    "rules.disabled": ("停用", "Disabled"),
    "rules.version": ("版本", "Version"),
    "rules.severity": ("级别", "Severity"),
    "rules.alarm_type": ("告警类型", "Alarm type"),
    "rules.origin": ("来源", "Origin"),
    "rules.origin.default": ("默认规则", "shipped default"),
    "rules.origin.tenant": ("本街道", "this subdistrict"),
    "rules.enable": ("启用", "Enable"),
    "rules.disable": ("停用", "Disable"),
    "rules.install_defaults": ("安装默认规则", "Install the default rules"),
    "rules.installed": ("已安装 {n} 条默认规则。", "{n} default rules installed."),
    "rules.body": ("规则定义（JSON）", "Rule body (JSON)"),
    "rules.body_hint": ("修改后保存即产生新版本；编码不可修改。",
                        "Every save makes a new version; the code does not change."),
    "rules.save": ("保存", "Save"),
    "rules.format": ("整理格式", "Format"),
    "rules.saved": ("已保存为第 {version} 版。", "Saved as version {version}."),
    "rules.versions": ("版本历史", "Version history"),
    "rules.saved_at": ("保存时间", "Saved"),
    "rules.saved_by": ("保存人", "By"),
    "rules.note": ("说明", "Note"),
    "rules.dry_run": ("试运行", "Dry run"),
    "rules.days": ("回放天数（≤30）", "Days back (≤ 30)"),
    "rules.dry_run_hint": ("用已存储的遥测数据回放编辑框中的规则（不保存、不告警）。",
                           "Replays the rule in the editor over stored telemetry (nothing saved, no alarms)."),
    "rules.dry_result": ("{devices} 台设备、{messages} 条消息：触发 {fired} 次，恢复 {cleared} 次。",
                         "{devices} devices, {messages} messages: fired {fired}, cleared {cleared}."),
    "rules.truncated": ("数据过多，回放已截断。", "Too much data: the replay was cut short."),
    "rules.what.fire": ("触发", "fire"),
    "rules.what.clear": ("恢复", "clear"),
    "rules.device": ("设备", "Device"),
    "rules.at": ("时间", "Time"),
    "rules.value": ("值", "Value"),
    "rules.help": ("字段说明（JSON Schema）", "Fields (JSON Schema)"),
    "rules.actions_help": ("动作", "Actions"),
    "rules.none": ("暂无规则。", "No rules yet."),
    "rules.back": ("返回规则列表", "Back to the rules"),
})


def _not_found(rule_id: int) -> HTTPException:
    return HTTPException(status_code=404, detail=f"规则 {rule_id} 不存在 (rule not found)")


def _rule(session: Session, rule_id: int) -> Rule:
    rule = service.get_rule(session=session, rule_id=rule_id)
    if rule is None:
        raise _not_found(rule_id)
    return rule


def _api_rule(rule_id: RuleId, session: SessionDep, user: ApiUser) -> Rule:
    return _rule(session, rule_id)


def _page_rule(rule_id: RuleId, session: SessionDep, user: PageUser) -> Rule:
    return _rule(session, rule_id)


ApiRule = Annotated[Rule, Depends(_api_rule)]
PageRule = Annotated[Rule, Depends(_page_rule)]


def _out(rule: Rule) -> RuleOut:
    return RuleOut.model_validate(rule, from_attributes=True)


def _detail(session: Session, rule: Rule) -> RuleDetail:
    history = [RuleVersionOut.model_validate(v, from_attributes=True)
               for v in service.versions(session=session, rule_id=rule.id)]
    return RuleDetail(**_out(rule).model_dump(), versions=history)


def _filtered(session: Session, *, scenario: str | None, kind: str | None, enabled: bool | None) -> list[Rule]:
    """The tenant's rules, filtered (a bad kind is refused naming the parameter)."""
    if kind and kind not in KIND_CODES:
        raise BadParam("kind", f"{kind!r} is not one of {', '.join(KIND_CODES)}")
    rules = service.list_rules(session=session, scenario=scenario)
    return [r for r in rules if (not kind or r.kind == kind) and (enabled is None or r.enabled == enabled)]


def _dry_out(result: service.DryRun) -> DryRunOut:
    return DryRunOut.model_validate(result, from_attributes=True)


def _kinds() -> RuleKindsOut:
    kinds = [KindOut(code=k.code, label=k.label[0], label_en=k.label[1], timed=k.timed,
                     spec_schema=k.Spec.model_json_schema()) for k in KINDS.values()]
    kinds.append(KindOut(code="composite", label=COMPOSITE_LABEL[0], label_en=COMPOSITE_LABEL[1], timed=True,
                         spec_schema=CompositeSpec.model_json_schema(by_alias=True)))
    acts = [ActionKindOut(do=do, schema=spec.model_json_schema()) for do, spec in rule_actions.SPECS.items()]
    return RuleKindsOut(kinds=kinds, actions=acts, severities=list(SEVERITIES),
                        window_schema=Window.model_json_schema())


# --- API -------------------------------------------------------------------------------------

@api.get("/rules", response_model=RuleList, summary="The tenant's rules (filter by scenario, kind, enabled)")
def list_rules(session: SessionDep, user: ApiRuleReader,
               scenario: Annotated[str | None, Query(max_length=3, description='S01…S20, or "" for the kernel')] = None,
               kind: Annotated[str | None, Query(max_length=20)] = None,
               enabled: bool | None = None) -> Any:
    rules = _filtered(session, scenario=scenario, kind=kind, enabled=enabled)
    return RuleList(items=[_out(r) for r in rules], total=len(rules))


@api.post("/rules", response_model=RuleDetail, status_code=201,
          summary="Create a rule (validated; 422 names the field, e.g. spec.op)")
def create_rule(body: RuleIn, session: SessionDep, user: ApiRuleManager) -> Any:
    rule = service.save_rule(session=session, body=body.changes(), actor=user.username)
    return _detail(session, rule)


@api.get("/rule-kinds", response_model=RuleKindsOut,
         summary="Every rule kind with the JSON Schema of its spec, and the actions' schemas")
def rule_kinds(user: ApiRuleReader) -> Any:
    return _kinds()


@api.post("/rules/install-defaults", response_model=InstalledOut,
          summary="Give the tenant every shipped rule it does not have yet")
def install_defaults(session: SessionDep, user: ApiRuleManager) -> Any:
    added = service.install_default_rules(session=session, actor=user.username)
    return InstalledOut(installed=[r.code for r in added])


@api.post("/rules/dry-run", response_model=DryRunOut,
          summary="What a rule body (saved or not) would have done over the stored telemetry of the last days")
def dry_run_body(body: DryRunIn, session: SessionDep, user: ApiRuleReader) -> Any:
    data = body.changes()
    days = float(data.pop("days", body.days))
    return _dry_out(service.dry_run(session=session, body=data, days=days))


@api.get("/rules/{rule_id:int}", response_model=RuleDetail, summary="One rule with its versions")
def get_rule(rule: ApiRule, session: SessionDep, user: ApiRuleReader) -> Any:
    return _detail(session, rule)


@api.put("/rules/{rule_id:int}", response_model=RuleDetail,
         summary="Save a new version of a rule (the body may be partial; the code does not change)")
def put_rule(rule: ApiRule, body: RulePatch, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.RULE_MANAGE)
    service.save_rule(session=session, rule=rule, body=body.changes(), actor=user.username)
    return _detail(session, rule)


@api.post("/rules/{rule_id:int}/enable", response_model=RuleOut, summary="Enable a rule (a new version)")
def enable_rule(rule: ApiRule, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.RULE_MANAGE)
    return _out(service.set_enabled(session=session, rule=rule, enabled=True, actor=user.username))


@api.post("/rules/{rule_id:int}/disable", response_model=RuleOut, summary="Disable a rule (a new version)")
def disable_rule(rule: ApiRule, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.RULE_MANAGE)
    return _out(service.set_enabled(session=session, rule=rule, enabled=False, actor=user.username))


@api.get("/rules/{rule_id:int}/versions", response_model=list[RuleVersionOut],
         summary="Every saved version of a rule, newest first")
def rule_versions(rule: ApiRule, session: SessionDep, user: ApiUser) -> Any:
    ensure_can(user, iam.RULE_READ)
    return [RuleVersionOut.model_validate(v, from_attributes=True)
            for v in service.versions(session=session, rule_id=rule.id)]


@api.post("/rules/{rule_id:int}/dry-run", response_model=DryRunOut,
          summary="What the saved rule would have done over the stored telemetry of the last days")
def dry_run_rule(rule: ApiRule, session: SessionDep, user: ApiUser,
                 days: Annotated[float, Query(gt=0, le=30, description="how far back (at most 30 days)")] = 7.0) -> Any:
    ensure_can(user, iam.RULE_READ)
    return _dry_out(service.dry_run(session=session, body=_body_of(rule), days=days))


# --- pages -----------------------------------------------------------------------------------

def _body_of(rule: Rule) -> dict[str, Any]:
    return {k: getattr(rule, k) for k in RULE_FIELDS}


def _pretty(body: Any, indent: int | None = 2) -> str:
    return json.dumps(body, ensure_ascii=False, indent=indent)


NEW_RULE: dict[str, Any] = {
    "code": "temperature_high", "name": "温度过高", "description": "", "scenario": "", "kind": "threshold",
    "enabled": True, "target": {"device_types": ["smoke_detector"]},
    "spec": {"field": "temperature_c", "op": ">", "value": 60, "clear_value": 50, "for_s": 60},
    "window": None, "severity": "MAJOR", "alarm_type": "temperature_high", "actions": [{"do": "alarm"}],
}


def _parse(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text or "")
    except ValueError as exc:
        raise RuleError("body", f"不是合法 JSON (not valid JSON: {exc})") from None
    if not isinstance(body, dict):
        raise RuleError("body", "应为 JSON 对象 (must be a JSON object)")
    try:  # the same checks of types and lengths as the API's
        return RulePatch.model_validate(body).changes()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RuleError(".".join(str(p) for p in first["loc"]) or "body", first["msg"]) from None


def _days(raw: str) -> float:
    try:
        days = float(raw or 7)
    except ValueError:
        raise RuleError("days", f"应为数字 (a number), 收到 {raw!r}") from None
    if not 0 < days <= 30:
        raise RuleError("days", "应在 0–30 之间 (between 0 and 30)")
    return days


def _editor(request: Request, session: Session, user: User, *, rule: Rule | None, text: str,
            error: str = "", message: str = "", dry: service.DryRun | None = None, days: str = "7",
            status_code: int = 200) -> Response:
    from shequ.core.iot.models import Device

    lang = lang_of(request)
    devices: dict[int, str] = {}
    if dry is not None and dry.events:
        ids = {int(e["device_id"]) for e in dry.events[:FIRST_EVENTS]}
        devices = {d.id: d.code for d in session.scalars(select(Device).where(Device.id.in_(ids)))}
    events = [{**e, "at": dt.datetime.fromisoformat(e["at"]), "device": devices.get(e["device_id"], e["device_id"])}
              for e in (dry.events[:FIRST_EVENTS] if dry else [])]
    return render(request, "rules/detail.html", status_code=status_code, rule=rule, text=text, error=error,
                  message=message, dry=dry, dry_events=events, days=days, rule_kinds=_kinds(), kind_labels=_kind_labels(lang),
                  history=service.versions(session=session, rule_id=rule.id) if rule else [],
                  may_manage=iam.can(user, iam.RULE_MANAGE), pretty=_pretty)


@pages.get("/rules")
def rules_page(request: Request, session: SessionDep, user: PageRuleReader,
               scenario: Annotated[str, Query(max_length=3)] = "",
               kind: Annotated[str, Query(max_length=20)] = "",
               enabled: Annotated[str, Query(pattern="^(|yes|no)$")] = "",
               installed: Annotated[int | None, Query(ge=0, le=10_000)] = None) -> Response:
    error = ""
    try:
        rules = _filtered(session, scenario=scenario or None, kind=kind or None,
                          enabled={"yes": True, "no": False}.get(enabled))
    except BadParam as exc:
        error, kind = str(exc), ""
        rules = _filtered(session, scenario=scenario or None, kind=None, enabled=None)
    scenarios = sorted({r.scenario for r in service.list_rules(session=session) if r.scenario})
    return render(request, "rules/list.html", rules=rules, error=error, kind_codes=KIND_CODES,
                  kind_labels=_kind_labels(lang_of(request)), scenarios=scenarios, installed=installed,
                  f={"scenario": scenario, "kind": kind, "enabled": enabled},
                  may_manage=iam.can(user, iam.RULE_MANAGE), next_url=request.url.path + (
                      f"?{request.url.query}" if request.url.query else ""))


def _kind_labels(lang: str) -> dict[str, str]:
    labels = {code: (k.label[0] if lang.startswith("zh") else k.label[1]) for code, k in KINDS.items()}
    labels["composite"] = COMPOSITE_LABEL[0] if lang.startswith("zh") else COMPOSITE_LABEL[1]
    return labels


def _back(next_url: str, fallback: str) -> str:
    """Where a form sends the user back to: a page of the rules, never another site."""
    return next_url if next_url.startswith("/rules") and not next_url.startswith("//") else fallback


@pages.post("/rules/install-defaults")
def install_defaults_page(session: SessionDep, user: PageRuleManager) -> Response:
    added = service.install_default_rules(session=session, actor=user.username)
    return RedirectResponse(f"/rules?installed={len(added)}", status_code=303)


@pages.get("/rules/new")
def new_rule_page(request: Request, session: SessionDep, user: PageRuleManager) -> Response:
    return _editor(request, session, user, rule=None, text=_pretty(NEW_RULE))


@pages.post("/rules/new")
def create_rule_page(request: Request, session: SessionDep, user: PageRuleManager,
                     body: Annotated[str, Form(max_length=200_000)] = "") -> Response:
    try:
        rule = service.save_rule(session=session, body=_parse(body), actor=user.username)
    except RuleError as exc:
        return _editor(request, session, user, rule=None, text=body, error=f"{exc.field}: {exc.message}",
                       status_code=422)
    return RedirectResponse(f"/rules/{rule.id}?saved={rule.version}", status_code=303)


@pages.post("/rules/new/dry-run")
def dry_run_new_page(request: Request, session: SessionDep, user: PageRuleReader,
                     body: Annotated[str, Form(max_length=200_000)] = "",
                     days: Annotated[str, Form(max_length=10)] = "7") -> Response:
    return _dry_page(request, session, user, None, body, days)


@pages.get("/rules/{rule_id:int}")
def rule_page(request: Request, rule: PageRule, session: SessionDep, user: PageRuleReader,
              saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    message = i18n.t("rules.saved", lang_of(request), version=saved) if saved else ""
    return _editor(request, session, user, rule=rule, text=_pretty(_body_of(rule)), message=message)


@pages.post("/rules/{rule_id:int}")
def save_rule_page(request: Request, rule: PageRule, session: SessionDep, user: PageUser,
                   body: Annotated[str, Form(max_length=200_000)] = "") -> Response:
    ensure_can(user, iam.RULE_MANAGE)
    try:
        service.save_rule(session=session, rule=rule, body=_parse(body), actor=user.username)
    except RuleError as exc:
        return _editor(request, session, user, rule=rule, text=body, error=f"{exc.field}: {exc.message}",
                       status_code=422)
    return RedirectResponse(f"/rules/{rule.id}?saved={rule.version}", status_code=303)


@pages.post("/rules/{rule_id:int}/dry-run")
def dry_run_page(request: Request, rule: PageRule, session: SessionDep, user: PageRuleReader,
                 body: Annotated[str, Form(max_length=200_000)] = "",
                 days: Annotated[str, Form(max_length=10)] = "7") -> Response:
    return _dry_page(request, session, user, rule, body or _pretty(_body_of(rule)), days)


def _dry_page(request: Request, session: Session, user: User, rule: Rule | None, body: str,
              days: str) -> Response:
    try:
        result = service.dry_run(session=session, body=_parse(body), days=_days(days))
    except RuleError as exc:
        return _editor(request, session, user, rule=rule, text=body, error=f"{exc.field}: {exc.message}",
                       days=days, status_code=422)
    return _editor(request, session, user, rule=rule, text=body, dry=result, days=days)


@pages.post("/rules/{rule_id:int}/enable")
def enable_page(rule: PageRule, session: SessionDep, user: PageUser,
                next: Annotated[str, Form(max_length=500)] = "") -> Response:
    ensure_can(user, iam.RULE_MANAGE)
    service.set_enabled(session=session, rule=rule, enabled=True, actor=user.username)
    return RedirectResponse(_back(next, f"/rules/{rule.id}"), status_code=303)


@pages.post("/rules/{rule_id:int}/disable")
def disable_page(rule: PageRule, session: SessionDep, user: PageUser,
                 next: Annotated[str, Form(max_length=500)] = "") -> Response:
    ensure_can(user, iam.RULE_MANAGE)
    service.set_enabled(session=session, rule=rule, enabled=False, actor=user.username)
    return RedirectResponse(_back(next, f"/rules/{rule.id}"), status_code=303)

