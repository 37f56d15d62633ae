"""居民端 pages (mobile web): home, report a problem, my requests with their progress and rating,
notices, and the large-font switch (适老化). The logic and the scope rules are in service.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from shequ.core.cases import attachments as files
from shequ.core.cases import service as cases
from shequ.core.cases.models import Case
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.notify import notices
from shequ.platforms.resident import service
from shequ.web import i18n, nav
from shequ.web.deps import LARGE_FONT_COOKIE, PageUser, SessionDep, ensure_can, lang_of, render
from shequ.web.records import MAX_ID
from shequ.web.security import csrf_protect, secure_cookies

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="case id")]
AttachmentId = Annotated[int, Path(ge=1, le=MAX_ID, description="attachment id")]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="notice id")]
LARGE_FONT_DAYS = 365

i18n.extend({
    "resident.app": ("社区服务", "Community services"),
    "resident.home": ("首页", "Home"),
    "resident.hello": ("您好，{name}", "Hello, {name}"),
    "resident.report": ("我要报事", "Report a problem"),
    "resident.report_hint": ("拍张照片，说说问题，我们尽快处理", "Take a photo, tell us what is wrong"),
    "resident.requests": ("我的诉求", "My requests"),
    "resident.open_count": ("{n} 件正在办理", "{n} being dealt with"),
    "resident.none_open": ("没有正在办理的诉求", "Nothing being dealt with"),
    "resident.notices": ("通知公告", "Notices"),
    "resident.all_notices": ("全部通知", "All notices"),
    "resident.no_notices": ("暂无通知。", "No notices yet."),
    "resident.large_font": ("大字", "Large text"),
    "resident.large_font_on": ("大字模式：开", "Large text: on"),
    "resident.large_font_off": ("大字模式：关", "Large text: off"),
    "resident.logout": ("退出登录", "Log out"),
    "resident.form_error": ("请按提示修改后再提交。", "Please correct the marked fields."),
    "resident.category": ("问题类别", "Category"),
    "resident.choose": ("请选择", "Choose…"),
    "resident.title": ("标题", "Title"),
    "resident.title_hint": ("可不填，默认用问题类别", "Optional: the category is used"),
    "resident.description": ("问题描述", "What is wrong"),
    "resident.description_hint": ("例如：楼下路灯不亮已经三天了", "e.g. the street light outside has been out for 3 days"),
    "resident.photos": ("照片", "Photos"),
    "resident.add_photos": ("拍照或选择照片", "Take or choose photos"),
    "resident.photos_hint": ("最多 6 张，每张不超过 10 MB", "Up to 6, each at most 10 MB"),
    "resident.location": ("问题在哪里", "Where is it"),
    "resident.at_home": ("我家", "My home"),
    "resident.no_home": ("未登记住址", "no home address on record"),
    "resident.on_map": ("在地图上选点", "Pick on the map"),
    "resident.my_position": ("使用我的位置", "Use my position"),
    "resident.map_hint": ("点一下地图，标出问题的位置", "Tap the map where the problem is"),
    "resident.map_failed": ("地图无法显示，请使用“我的位置”。", "The map cannot be shown; use your position."),
    "resident.locating": ("正在定位…", "Locating…"),
    "resident.located": ("已定位", "Located"),
    "resident.locate_failed": ("未能定位，请允许定位或在地图上选点。",
                               "Could not locate you: allow location or pick on the map."),
    "resident.picked": ("已选位置", "Chosen place"),
    "resident.address_detail": ("具体位置（可选）", "Exact spot (optional)"),
    "resident.address_detail_hint": ("例如：3号楼门口", "e.g. by the door of building 3"),
    "resident.submit": ("提交", "Submit"),
    "resident.submitted": ("提交成功", "Sent"),
    "resident.submitted_text": ("我们已收到您的诉求，会尽快处理。", "We have your request and will deal with it soon."),
    "resident.code": ("诉求编号", "Request number"),
    "resident.follow": ("查看办理进度", "Follow its progress"),
    "resident.report_more": ("再报一件", "Report another"),
    "resident.no_requests": ("您还没有提过诉求。", "You have not reported anything yet."),
    "resident.total": ("共 {total} 件", "{total} in all"),
    "resident.reported_at": ("提交时间", "Sent"),
    "resident.address": ("位置", "Place"),
    "resident.progress": ("办理进度", "Progress"),
    "resident.your_photos": ("照片", "Photos"),
    "resident.photo_n": ("照片 {n}", "Photo {n}"),
    "resident.rate": ("评价办理结果", "Rate the result"),
    "resident.rate_hint": ("您对这次办理满意吗？", "Are you satisfied with how it was dealt with?"),
    "resident.star_n": ("{n} 星", "{n} stars"),
    "resident.comment": ("说两句（可选）", "Comment (optional)"),
    "resident.send_rating": ("提交评价", "Send rating"),
    "resident.your_rating": ("您的评价", "Your rating"),
    "resident.thanks": ("谢谢您的评价！", "Thank you for your rating!"),
    "resident.notice_from_subdistrict": ("街道", "Subdistrict"),
    "resident.notice_from_committee": ("居委会", "Residents' committee"),
    **{f"resident.stage.{k}": v for k, v in {
        "submitted": ("已提交", "Sent"), "accepted": ("已受理", "Accepted"),
        "in_progress": ("处理中", "Being dealt with"), "resolved": ("已办结", "Resolved"),
        "rated": ("已评价", "Rated"), "not_accepted": ("未受理", "Not accepted")}.items()},
    **{f"resident.step.{k}": v for k, v in {
        "report": ("您提交了诉求", "You sent the request"),
        "register": ("诉求已受理", "Your request was accepted"),
        "void": ("诉求未予受理", "Your request was not accepted"),
        "dispatch": ("已交由 {department} 处理", "Passed to {department}"),
        "rework": ("重新处理中", "Being dealt with again"),
        "handle": ("已处理", "Dealt with"),
        "feed_back": ("处理结果已反馈", "The result was reported back"),
        "verify": ("已现场核实", "Checked on site"),
        "close": ("已办结", "Resolved"),
        "evaluate": ("您评价了 {n} 星", "You rated it {n} stars"),
        "comment": ("留言", "Note")}.items()},
    # the major classes (the catalogue keeps them in Chinese only)
    **{f"resident.major.{zh}": (zh, en) for zh, en in {
        "公用设施": "Public facilities", "道路交通": "Roads and traffic", "市容环境": "Street cleanliness",
        "园林绿化": "Trees and greenery", "宣传广告": "Posters and flyers", "施工管理": "Building works",
        "突发事件": "Emergencies", "街面秩序": "Street order", "其他事件": "Other problems",
        "其他设施": "Other facilities"}.items()},
})


# --- rendering -----------------------------------------------------------------------------


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A resident page: ``render`` with the bottom tab bar of the resident level."""
    user = getattr(request.state, "user", None)
    tabs = nav.menu(user, lang=lang_of(request), path=request.url.path,
                    tenant_settings=getattr(request.state, "tenant_settings", None), level="resident")
    return render(request, name, status_code=status_code, tabs=tabs, stage_word=stage_word,
                  major_label=lambda major: _major_label(major, lang_of(request)), **context)


def stage_word(stage: str) -> str:
    return service.STAGE_WORDS.get(stage, "in_progress")


def _major_label(major: str, lang: str) -> str:
    key = f"resident.major.{major}"
    return i18n.t(key, lang) if key in i18n.CATALOG else major


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail="诉求不存在 (not found)")


def _reporter(user: User) -> User:
    return ensure_can(user, iam.CASE_REPORT)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _safe_next(raw: Any) -> str:
    value = _str(raw)
    if not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n\x00"):
        return "/m"
    return value


# --- home ----------------------------------------------------------------------------------


@router.get("/m")
def home(request: Request, session: SessionDep, user: PageUser) -> Response:
    may_report = iam.can(user, iam.CASE_REPORT)
    return page(request, "resident/home.html", may_report=may_report,
                open_count=service.open_count(session=session, user=user) if may_report else 0,
                latest=notices.visible_to(session=session, user=user, limit=3))


@router.post("/m/large-font")
async def large_font(request: Request) -> Response:
    """适老化: switch large type on or off for this browser (a cookie for a year) and go back."""
    form = await request.form()
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    if request.cookies.get(LARGE_FONT_COOKIE) == "1":
        response.delete_cookie(LARGE_FONT_COOKIE, path="/")
    else:
        response.set_cookie(LARGE_FONT_COOKIE, "1", max_age=LARGE_FONT_DAYS * 86400, samesite="lax",
                            secure=secure_cookies(), httponly=True, path="/")
    return response


# --- report --------------------------------------------------------------------------------


def _report_context(request: Request, session: SessionDep, user: User, form: service.ReportIn | None = None,
                    errors: dict[str, str] | None = None) -> dict[str, Any]:
    home_place = service.home_place(session=session, user=user)
    form = form or service.ReportIn(location="home" if home_place is not None else "map")
    return {"groups": service.class_groups(session=session, lang=lang_of(request)), "v": form,
            "errors": errors or {}, "home": home_place,
            "home_label": service.place_label(home_place) if home_place is not None else "",
            "max_photos": service.MAX_PHOTOS}


@router.get("/m/report")
def report_page(request: Request, session: SessionDep, user: PageUser) -> Response:
    _reporter(user)
    return page(request, "resident/report.html", **_report_context(request, session, user))


async def _read_form(request: Request) -> service.ReportIn:
    form = await request.form()

    def text(key: str) -> str:
        return _str(form.get(key))

    photos = []
    for item in form.getlist("photos"):
        if isinstance(item, UploadFile):
            data = await item.read(files.MAX_BYTES + 1)
            if data or item.filename:  # an empty file input still sends a part with no name
                photos.append(service.Photo(name=item.filename or "photo", data=data))
    return service.ReportIn(class_code=text("class_code"), title=text("title"), description=text("description"),
                            location=text("location") or "home", lon=text("lon"), lat=text("lat"),
                            address_detail=text("address_detail"), photos=photos)


@router.post("/m/report")
async def report_post(request: Request, session: SessionDep, user: PageUser) -> Response:
    _reporter(user)
    form = await _read_form(request)
    try:
        case = service.report(session=session, user=user, form=form)
    except service.ReportRefused as refused:
        form.photos = []  # a browser cannot be handed its files back: the form asks for them again
        return page(request, "resident/report.html", status_code=422,
                    **_report_context(request, session, user, form, refused.errors))
    return RedirectResponse(f"/m/requests/{case.id}/submitted", status_code=303)


@router.get("/m/report/map.json")
def report_map(session: SessionDep, user: PageUser) -> Response:
    _reporter(user)
    return JSONResponse(service.map_footprints(session=session, user=user))


# --- my requests ---------------------------------------------------------------------------


def _my_case(session: SessionDep, user: User, case_id: int) -> Case:
    _reporter(user)
    case = service.my_case(session=session, user=user, case_id=case_id)
    if case is None:
        raise _not_found()
    return case


@router.get("/m/requests")
def requests_page(request: Request, session: SessionDep, user: PageUser,
                  page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    _reporter(user)
    found = service.my_cases(session=session, user=user, page=page_no)
    names = cases.class_names(session=session, codes=[c.class_code for c in found.items], lang=lang_of(request))
    return page(request, "resident/requests.html", found=found, names=names)


@router.get("/m/requests/{case_id:int}/submitted")
def submitted_page(request: Request, case_id: CaseId, session: SessionDep, user: PageUser) -> Response:
    case = _my_case(session, user, case_id)
    return page(request, "resident/submitted.html", case=case)


def _detail(request: Request, session: SessionDep, user: User, case: Case, status_code: int = 200,
            errors: dict[str, str] | None = None, rating: dict[str, str] | None = None) -> Response:
    lang = lang_of(request)
    return page(request, "resident/detail.html", status_code=status_code, case=case,
                class_name=cases.class_names(session=session, codes=[case.class_code], lang=lang).get(
                    case.class_code, case.class_code),
                steps=service.progress(session=session, case=case),
                photos=service.photos(session=session, case=case), may_rate=service.may_rate(user, case),
                errors=errors or {}, rating=rating or {})


@router.get("/m/requests/{case_id:int}")
def request_page(request: Request, case_id: CaseId, session: SessionDep, user: PageUser) -> Response:
    return _detail(request, session, user, _my_case(session, user, case_id))


@router.post("/m/requests/{case_id:int}/rating")
async def rate_post(request: Request, case_id: CaseId, session: SessionDep, user: PageUser) -> Response:
    case = _my_case(session, user, case_id)
    form = await request.form()
    values = {k: _str(form.get(k)) for k in ("satisfaction", "comment")}
    try:
        service.rate(session=session, user=user, case=case, satisfaction=values["satisfaction"],
                     comment=values["comment"])
    except service.ReportRefused as refused:
        return _detail(request, session, user, case, status_code=422, errors=refused.errors, rating=values)
    return RedirectResponse(f"/m/requests/{case.id}", status_code=303)


@router.get("/m/requests/{case_id:int}/photos/{attachment_id:int}")
def photo(case_id: CaseId, attachment_id: AttachmentId, session: SessionDep, user: PageUser) -> Response:
    _reporter(user)
    found = service.photo(session=session, user=user, case_id=case_id, attachment_id=attachment_id)
    if found is None:
        raise HTTPException(status_code=404, detail="照片不存在 (not found)")
    row, data = found
    return Response(data, media_type=row.content_type,
                    headers={"Cache-Control": "private, max-age=86400", "Content-Disposition": "inline"})


# --- notices -------------------------------------------------------------------------------


@router.get("/m/notices")
def notices_page(request: Request, session: SessionDep, user: PageUser) -> Response:
    return page(request, "resident/notices.html", items=notices.visible_to(session=session, user=user))


@router.get("/m/notices/{notice_id:int}")
def notice_page(request: Request, notice_id: NoticeId, session: SessionDep, user: PageUser) -> Response:
    notice = notices.get_visible(session=session, user=user, notice_id=notice_id)
    if notice is None:
        raise HTTPException(status_code=404, detail="通知不存在 (not found)")
    return page(request, "resident/notice.html", notice=notice)
