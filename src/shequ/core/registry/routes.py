"""Routes of the thematic database: the API (/api/v1/people …) and the registry pages.

Thin: each route reads its parameters, calls the registry services (query, importer,
exporter, profiles, tags, quality) and shapes the answer.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.responses import Response

from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iam.schemas import UnmaskOut, UnmaskRequest
from shequ.core.places.routes import picker_levels
from shequ.core.registry.kinds import KINDS, Kind
from shequ.core.registry.query import list_records, present_rows
from shequ.web.deps import PageUser, SessionDep, client_ip, lang_of, render, require
from shequ.web.records import (
    PLURALS,
    BadParam,
    RecordId,
    api_items,
    filter_options,
    filter_values,
    flat_tags,
    get_record,
    item_models,
    kind_for_plural,
    params_from_query,
    quality_view,
    sort_keys,
    tag_tree,
)
from shequ.web.security import csrf_protect

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

api = APIRouter(tags=["registry"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

ApiReader = Annotated[User, Depends(require(iam.READ, api=True))]
ApiExporter = Annotated[User, Depends(require(iam.EXPORT, api=True))]
ApiImporter = Annotated[User, Depends(require(iam.IMPORT, api=True))]
PageReader = Annotated[User, Depends(require(iam.READ, api=False))]
PageExporter = Annotated[User, Depends(require(iam.EXPORT, api=False))]
PageImporter = Annotated[User, Depends(require(iam.IMPORT, api=False))]


def _unavailable(module: str) -> HTTPException:
    return HTTPException(status_code=503, detail=f"{module} 模块尚未就绪 (module {module} is not available)")


def _kind_or_404(plural: str) -> Kind:
    kind = kind_for_plural(plural) or KINDS.get(plural)
    if kind is None:
        raise HTTPException(status_code=404, detail=f"未知类别 {plural} (unknown kind)")
    return kind


def _export(*, session: Any, kind: Kind, query: Any, lang: str, user: User) -> Response:
    try:
        from shequ.core.registry.exporter import export_xlsx
    except ImportError:
        raise _unavailable("exporter") from None
    params = params_from_query(session=session, kind=kind, query=query)
    data, count = export_xlsx(session=session, kind=kind, params=params, lang=lang, actor=user.username)
    name = f"{kind.label(lang)}台账.xlsx" if lang.startswith("zh") else f"{kind.key}-ledger.xlsx"
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{kind.key}.xlsx\"; filename*=UTF-8''{quote(name)}",
        "X-Record-Count": str(count),
    })


def _profile_data(*, session: Any, kind: Kind, record_id: int, lang: str) -> Any:
    try:
        from shequ.core.registry.profiles import profile
    except ImportError:
        raise _unavailable("profiles") from None
    if kind.key not in PROFILED:
        raise HTTPException(status_code=404, detail=f"{kind.zh}没有画像 (no profile for {kind.key})")
    found = profile(session=session, entity=kind.key, entity_id=record_id, lang=lang)
    if found is None:
        raise HTTPException(status_code=404, detail=f"{kind.zh} {record_id} 不存在 (not found)")
    return found


# --- API ---------------------------------------------------------------------------------


def _register_api(kind: Kind) -> None:
    plural = PLURALS[kind.key]
    item_model, page_model = item_models(kind)
    extra = {"parameters": [
        {"name": key, "in": "query", "required": False,
         "schema": {"type": "string", **({"enum": vals} if (vals := filter_values(kind, key)) else {})},
         "description": f"filter by {key}"}
        for key in kind.filters
    ]}
    sortable = ", ".join(sorted(sort_keys(kind)))

    @api.get(f"/{plural}", response_model=page_model, openapi_extra=extra,
             name=f"list_{plural}", summary=f"{kind.zh} {kind.en}: filtered list",
             description=f"Filters: place (id, any level), tag (code, with the tags below it), q (name or "
                         f"a full ID number/phone), {', '.join(kind.filters)}. sort: {sortable} "
                         f"(prefix - for descending). Personal data is masked.")
    def list_(request: Request, session: SessionDep, user: ApiReader,
              place: int | None = None, tag: str | None = None, q: str | None = None,
              sort: str | None = None, page: int = 1, size: int = 50) -> Any:
        params = params_from_query(session=session, kind=kind, query=request.query_params)
        result = list_records(session=session, kind=kind, params=params, max_size=params.size)
        return {"items": api_items(session=session, kind=kind, items=result.items, lang=lang_of(request)),
                "total": result.total, "page": result.page, "size": result.size}

    @api.get(f"/{plural}/export.xlsx", name=f"export_{plural}", openapi_extra=extra,
             summary=f"{kind.zh} 台账 as XLSX (same filters as the list)",
             responses={200: {"content": {XLSX: {}}}})
    def export(request: Request, session: SessionDep, user: ApiExporter) -> Response:
        return _export(session=session, kind=kind, query=request.query_params, lang=lang_of(request),
                       user=user)

    @api.get(f"/{plural}/{{record_id:int}}", response_model=item_model, name=f"get_{kind.key}",
             summary=f"One {kind.en.lower()} record (personal data masked)")
    def detail(request: Request, record_id: RecordId, session: SessionDep, user: ApiReader) -> Any:
        record = get_record(session=session, kind=kind, record_id=record_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"{kind.zh} {record_id} 不存在 (not found)")
        return api_items(session=session, kind=kind, items=[record], lang=lang_of(request))[0]

    @api.get(f"/{plural}/{{record_id:int}}/profile", name=f"profile_{kind.key}",
             summary=f"{kind.zh}画像: everything known about one record")
    def profile(request: Request, record_id: RecordId, session: SessionDep, user: ApiReader) -> Any:
        found = _profile_data(session=session, kind=kind, record_id=record_id, lang=lang_of(request))
        return jsonable_encoder(found)

    if any(c.pii for c in kind.columns):
        @api.post(f"/{plural}/{{record_id:int}}/unmask", response_model=UnmaskOut,
                  name=f"unmask_{kind.key}",
                  summary="The full value of one personal-data field, for a stated purpose (audited)")
        def unmask(request: Request, record_id: RecordId, body: UnmaskRequest, session: SessionDep,
                   user: ApiReader) -> Any:
            return _unmask(request=request, session=session, user=user, kind=kind, record_id=record_id,
                           field=body.field, purpose=body.purpose)


def _unmask(*, request: Request, session: Any, user: User, kind: Kind, record_id: int, field: str,
            purpose: str) -> Any:
    try:
        value = iam.unmask(session=session, user=user, entity=kind.key, entity_id=record_id,
                           field=field, purpose=purpose, ip=client_ip(request))
    except ValueError as exc:
        raise BadParam("purpose" if "purpose" in str(exc) else "field", str(exc)) from None
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except PermissionError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    return UnmaskOut(field=field, value=value)


for _kind in KINDS.values():
    _register_api(_kind)


def _import(*, session: Any, kind_key: str, filename: str, data: bytes, source: str, user: User) -> Any:
    """The importer's answer: ("done", result) or ("rejected", errors)."""
    try:
        from shequ.core.registry.importer import ImportRejected, import_bytes
    except ImportError:
        raise _unavailable("importer") from None
    try:
        result = import_bytes(session=session, kind=kind_key, filename=filename, data=data,
                              source=source or "import", actor=user.username)
    except ImportRejected as rejected:
        return "rejected", [{"row": e.row, "column": e.column, "value": e.value, "reason": e.reason}
                            for e in rejected.errors]
    return "done", result


@api.post("/imports/{kind}", summary="Import a CSV/XLSX file; any bad row rejects the whole file",
          responses={422: {"description": "rejected: {errors: [{row, column, value, reason}]}"}})
async def import_file(request: Request, kind: str, session: SessionDep, user: ApiImporter,
                      file: Annotated[UploadFile, File(description="CSV or XLSX")],
                      source: Annotated[str, Form()] = "import") -> Any:
    target = _kind_or_404(kind)
    data = await file.read()
    status, outcome = _import(session=session, kind_key=target.key, filename=file.filename or "upload",
                              data=data, source=source, user=user)
    if status == "rejected":
        return JSONResponse({"detail": f"导入被拒绝，未做任何修改：{len(outcome)} 处错误 "
                                       f"(import rejected, nothing changed)", "errors": outcome},
                            status_code=422)
    return {"kind": target.key, "rows": outcome.rows, "created": outcome.created,
            "updated": outcome.updated, "batch_id": outcome.batch_id}


@api.get("/tags", summary="The tag taxonomy with the number of records per tag")
def tags(request: Request, session: SessionDep, user: ApiReader, applies_to: str | None = None) -> Any:
    return {"items": tag_tree(session=session, applies_to=applies_to, lang=lang_of(request))}


@api.get("/quality", summary="Data-quality report per kind and committee")
def quality(request: Request, session: SessionDep, user: ApiReader) -> Any:
    try:
        from shequ.core.registry.quality import report
    except ImportError:
        raise _unavailable("quality") from None
    return {"kinds": quality_view(report=report(session=session), lang=lang_of(request))}


# --- pages -------------------------------------------------------------------------------


def _query_without(query: Any, *drop: str, **add: Any) -> str:
    items = [(k, v) for k, v in query.multi_items() if k not in drop and k not in add and v != ""]
    items += [(k, str(v)) for k, v in add.items() if v not in (None, "")]
    return urlencode(items)


@pages.get("/registry/{plural}")
def list_page(request: Request, plural: str, session: SessionDep, user: PageReader) -> Response:
    kind = _kind_or_404(plural)
    lang = lang_of(request)
    error = ""
    try:
        params = params_from_query(session=session, kind=kind, query=request.query_params)
    except BadParam as exc:
        error = str(exc)
        params = params_from_query(session=session, kind=kind, query={})
    result = list_records(session=session, kind=kind, params=params, max_size=params.size)
    rows = present_rows(session=session, kind=kind, items=result.items, lang=lang)
    row_tags = _tags_of(session=session, kind=kind, ids=[o.id for o in result.items])
    context = {
        "kind": kind, "plural": plural, "params": params, "page": result, "rows": rows,
        "row_tags": row_tags, "show_tags": row_tags is not None, "error": error, "columns": [c for c in kind.columns if c.in_list],
        "sortable": sort_keys(kind), "query": request.query_params,
        "qs": lambda *drop, **add: _query_without(request.query_params, *drop, **add),
        "filter_options": lambda key: filter_options(kind, key, lang),
        "filter_header": lambda key: _filter_header(kind, key, lang),
        "profiled": kind.key in PROFILED,
        "tag_label": _tag_label(lang),
    }
    partial = request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request")
    if partial:
        response = render(request, "registry/_results.html", **context)
    else:
        tags = flat_tags(tag_tree(session=session, applies_to=kind.key, lang=lang))
        levels = picker_levels(session=session, place_id=params.place_id, lang=lang)
        response = render(request, "registry/list.html", tags=tags, levels=levels,
                          place_id=params.place_id or "", plurals=PLURALS, **context)
    response.headers["Vary"] = "HX-Request"
    return response


PROFILED = {"person", "household", "house", "organisation", "place", "facility", "situation"}


def profile_url(entity: str, record_id: int) -> str:
    """Where a profile link leads (buildings are places)."""
    key = "place" if entity in ("building", "place") else entity
    return f"/registry/{PLURALS.get(key, key)}/{record_id}"


def _filter_header(kind: Kind, key: str, lang: str) -> str:
    try:
        return kind.column(key).header(lang)
    except KeyError:
        return {"status": "状态" if lang.startswith("zh") else "status"}.get(key, key)


def _tags_of(*, session: Any, kind: Kind, ids: list[int]) -> dict[int, list[Any]] | None:
    """Tags of the listed records in one query; None while the tags module is missing."""
    try:
        from shequ.core.registry.tags import APPLIES_TO, tags_of
    except ImportError:
        return None
    if kind.key not in APPLIES_TO:
        return None  # a kind that carries no tags (devices)
    return tags_of(session=session, entity=kind.key, ids=ids) if ids else {}


def _tag_label(lang: str) -> Any:
    try:
        from shequ.core.registry.tags import tag_name
    except ImportError:
        return lambda tag: tag.name
    return lambda tag: tag_name(tag, lang)


@pages.get("/registry/{plural}/export.xlsx")
def export_page(request: Request, plural: str, session: SessionDep, user: PageExporter) -> Response:
    kind = _kind_or_404(plural)
    return _export(session=session, kind=kind, query=request.query_params, lang=lang_of(request), user=user)


@pages.get("/registry/{plural}/{record_id:int}")
def profile_page(request: Request, plural: str, record_id: RecordId, session: SessionDep,
                 user: PageReader) -> Response:
    kind = _kind_or_404(plural)
    found = _profile_data(session=session, kind=kind, record_id=record_id, lang=lang_of(request))
    record = get_record(session=session, kind=kind, record_id=record_id)
    pii = [c for c in kind.columns if c.pii]
    may_unmask = record is not None and bool(pii) and iam.may_unmask(user=user, record=record)
    return render(request, "registry/profile.html", kind=kind, plural=plural, record_id=record_id,
                  profile=found, pii=pii if may_unmask else [], plurals=PLURALS,
                  profile_url=profile_url)


@pages.post("/registry/{plural}/{record_id:int}/unmask")
def unmask_page(request: Request, plural: str, record_id: RecordId, session: SessionDep, user: PageUser,
                field: Annotated[str, Form()] = "", purpose: Annotated[str, Form()] = "") -> Response:
    kind = _kind_or_404(plural)
    try:
        shown = _unmask(request=request, session=session, user=user, kind=kind, record_id=record_id,
                        field=field, purpose=purpose)
    except BadParam as exc:
        return render(request, "registry/_unmasked.html", status_code=422, error=exc.message,
                      field=field, value="", kind=kind, plural=plural, record_id=record_id)
    return render(request, "registry/_unmasked.html", error="", field=field, value=shown.value,
                  kind=kind, plural=plural, record_id=record_id)


@pages.get("/import")
def import_page(request: Request, session: SessionDep, user: PageImporter, kind: str = "person") -> Response:
    return render(request, "registry/import.html", selected=kind if kind in KINDS else "person",
                  source="", outcome=None, errors=[], message="")


@pages.post("/import")
async def import_submit(request: Request, session: SessionDep, user: PageImporter,
                        kind: Annotated[str, Form()] = "person",
                        source: Annotated[str, Form()] = "",
                        file: Annotated[UploadFile | None, File()] = None) -> Response:
    target = KINDS.get(kind)
    context: dict[str, Any] = {"selected": kind, "source": source, "outcome": None, "errors": [],
                               "message": ""}
    if target is None:
        context["message"] = f"未知类别 {kind} (unknown kind)"
        return render(request, "registry/import.html", status_code=422, **context)
    data = await file.read() if file is not None else b""
    if file is None or not file.filename or not data:
        context["message"] = "import.nofile"
        return render(request, "registry/import.html", status_code=422, **context)
    status, outcome = _import(session=session, kind_key=target.key, filename=file.filename, data=data,
                              source=source, user=user)
    if status == "rejected":
        context["errors"] = outcome
        return render(request, "registry/import.html", status_code=422, **context)
    context["outcome"] = outcome
    return render(request, "registry/import.html", **context)


@pages.get("/import/template/{kind}.xlsx")
def import_template_page(request: Request, kind: str, user: PageImporter) -> Response:
    try:
        from shequ.core.registry.importer import import_template
    except ImportError:
        raise _unavailable("importer") from None
    target = _kind_or_404(kind)
    lang = lang_of(request)
    name = f"{target.label(lang)}导入模板.xlsx" if lang.startswith("zh") else f"{target.key}-template.xlsx"
    return Response(import_template(target.key, lang=lang), media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{target.key}-template.xlsx\"; "
                               f"filename*=UTF-8''{quote(name)}"})


@pages.get("/quality")
def quality_page(request: Request, session: SessionDep, user: PageReader) -> Response:
    try:
        from shequ.core.registry.quality import report
    except ImportError:
        return render(request, "registry/quality.html", kinds_report=None)
    return render(request, "registry/quality.html", plurals=PLURALS,
                  kinds_report=quality_view(report=report(session=session), lang=lang_of(request)))


@pages.get("/quality/{kind}/{what}")
def quality_records(request: Request, kind: str, what: str, session: SessionDep, user: PageReader,
                    committee: int | None = None) -> Response:
    """The records behind one figure of the quality report (missing field or conflicts)."""
    try:
        from shequ.core.registry import quality
    except ImportError:
        raise _unavailable("quality") from None
    target = _kind_or_404(kind)
    lang = lang_of(request)
    conflicts: list[Any] = []
    try:
        if what == "conflicts":
            conflicts = quality.conflicts(session=session, kind=target.key, committee_id=committee)
            items = list({c.entity_id: c.record for c in conflicts}.values())
            title = "来源冲突" if lang.startswith("zh") else "conflicting sources"
        else:
            items = quality.missing(session=session, kind=target.key, field=what, committee_id=committee)
            spec = next(s for s in quality.MISSING_FIELDS[target.key] if s.key == what)
            title = spec.label(lang)
    except (ValueError, StopIteration) as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    rows = present_rows(session=session, kind=target, items=items, lang=lang)
    return render(request, "registry/quality_records.html", kind=target, plural=PLURALS[target.key],
                  title=title, rows=rows, columns=[c for c in target.columns if c.in_list],
                  conflicts=conflicts, profiled=target.key in PROFILED)
