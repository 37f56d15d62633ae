"""The words of the pages in Chinese (default) and English: a small catalogue and ``t(key)``.

Enum values are not here: their labels come from ``kinds.LABELS`` through ``kinds.label``.
"""

from __future__ import annotations

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"

CATALOG: dict[str, tuple[str, str]] = {
    "app.name": ("社区数字化平台", "Community Digital Platform"),
    "app.short": ("社区数字化平台", "shequ"),
    "nav.home": ("首页", "Home"),
    "nav.registry": ("主题数库", "Registry"),
    "nav.import": ("数据导入", "Import"),
    "nav.quality": ("数据质量", "Data quality"),
    "nav.logout": ("退出登录", "Log out"),
    "nav.lang": ("English", "中文"),
    "login.title": ("登录", "Log in"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Log in"),
    "login.failed": ("用户名或密码错误；连续失败 5 次后账号将锁定 15 分钟。",
                     "Wrong username or password; after 5 failures the account is locked for 15 minutes."),
    "login.tenant": ("街道", "Subdistrict"),
    "login.unknown_tenant": ("没有这个街道。", "No such subdistrict."),
    "login.missing": ("请输入用户名和密码。", "Enter your username and password."),
    "home.title": ("首页", "Home"),
    "home.welcome": ("欢迎，{name}", "Welcome, {name}"),
    "home.counts": ("主题数库概况", "The registry at a glance"),
    "home.records": ("条", "records"),
    "home.browse": ("浏览", "Browse"),
    "list.filters": ("筛选", "Filters"),
    "list.place": ("区域", "Area"),
    "list.grid": ("网格", "Grid"),
    "list.committee": ("居委会", "Committee"),
    "list.compound": ("小区", "Compound"),
    "list.building": ("楼栋", "Building"),
    "list.all": ("全部", "All"),
    "list.tag": ("标签", "Tag"),
    "list.q": ("搜索", "Search"),
    "list.q_hint": ("姓名、名称或完整身份证号/手机号", "Name, or a full ID number / phone"),
    "list.apply": ("查询", "Apply"),
    "list.reset": ("重置", "Reset"),
    "list.total": ("共 {total} 条", "{total} records"),
    "list.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "list.prev": ("上一页", "Previous"),
    "list.next": ("下一页", "Next"),
    "list.export": ("导出台账 (XLSX)", "Export ledger (XLSX)"),
    "list.empty": ("没有符合条件的记录。", "No records match."),
    "list.open": ("查看", "Open"),
    "list.size": ("每页", "Per page"),
    "profile.title": ("画像", "Profile"),
    "profile.tags": ("标签", "Tags"),
    "profile.history": ("变更记录", "Change history"),
    "profile.when": ("时间", "When"),
    "profile.who": ("操作人", "Who"),
    "profile.action": ("操作", "Action"),
    "profile.changes": ("内容", "Changes"),
    "profile.none": ("暂无", "None"),
    "profile.missing": ("画像模块尚未就绪。", "Profiles are not available yet."),
    "unmask.button": ("显示完整", "Show in full"),
    "unmask.purpose": ("查看用途（将记入审计日志）", "Purpose (written to the audit log)"),
    "unmask.submit": ("确认查看", "Show"),
    "unmask.cancel": ("取消", "Cancel"),
    "unmask.audited": ("已记入审计日志", "written to the audit log"),
    "import.title": ("数据导入", "Import data"),
    "import.kind": ("数据类别", "Kind"),
    "import.file": ("文件（CSV 或 XLSX）", "File (CSV or XLSX)"),
    "import.source": ("数据来源（业务条线）", "Source (business line)"),
    "import.source_hint": ("如：公安实有人口、民政", "e.g. police population register"),
    "import.submit": ("上传并导入", "Upload and import"),
    "import.template": ("下载导入模板", "Download template"),
    "import.rule": ("先校验全部行：任何一行有错，整个文件都不会导入。",
                    "Every row is checked first: if any row is wrong, nothing is imported."),
    "import.rejected": ("导入被拒绝，未做任何修改：共 {n} 处错误", "Import rejected, nothing changed: {n} errors"),
    "import.done": ("导入完成：共 {rows} 行，新增 {created}，更新 {updated}",
                    "Imported {rows} rows: {created} created, {updated} updated"),
    "import.row": ("行号", "Row"),
    "import.column": ("列", "Column"),
    "import.value": ("值", "Value"),
    "import.reason": ("原因", "Reason"),
    "import.nofile": ("请选择要上传的文件。", "Choose a file to upload."),
    "import.unavailable": ("导入模块尚未就绪。", "The importer is not available yet."),
    "quality.title": ("数据质量", "Data quality"),
    "quality.unavailable": ("数据质量模块尚未就绪。", "The data-quality report is not available yet."),
    "quality.hint": ("按类别和居委会统计：缺失字段、来源冲突、未落地记录。点击数字查看对应记录。",
                     "Per kind and committee: missing fields, conflicting sources, records not placed. "
                     "Click a number to see the records."),
    "quality.total": ("记录数", "Records"),
    "quality.missing": ("缺", "Missing"),
    "quality.conflicts": ("来源冲突", "Conflicts"),
    "quality.field": ("字段", "Field"),
    "quality.sources": ("各来源的值", "Values by source"),
    "quality.first500": ("（仅显示前 500 条）", "(first 500 shown)"),
    "error.title": ("出错了", "Something went wrong"),
    "error.not_found": ("找不到该记录。", "Not found."),
    "error.forbidden": ("您没有权限执行此操作。", "You are not allowed to do this."),
    "error.csrf": ("页面已过期，请刷新后重试。", "The page has expired; reload and try again."),
    "error.back": ("返回首页", "Back to home"),
    "history.create": ("新建", "created"),
    "history.update": ("修改", "updated"),
    "history.delete": ("删除", "deleted"),
    "common.yes": ("是", "yes"),
    "common.no": ("否", "no"),
    "nav.audit": ("审计日志", "Audit log"),
    "audit.title": ("审计日志", "Audit log"),
    "audit.note": ("登录、导出、查看完整信息和每一次数据写入都记录在此；记录不可修改或删除。时间为北京时间。",
                   "Logins, exports, unmasking and every write are recorded here; entries cannot be "
                   "changed or deleted. Times are Beijing time."),
    "audit.at": ("时间", "Time"),
    "audit.actor": ("操作人", "Actor"),
    "audit.action": ("操作", "Action"),
    "audit.target": ("对象", "Target"),
    "audit.purpose": ("用途", "Purpose"),
    "audit.ip": ("来源地址", "From (IP)"),
    "audit.detail": ("详情", "Detail"),
    "audit.from": ("开始时间", "From"),
    "audit.to": ("结束时间", "To"),
}


def normalise_lang(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value.lower().startswith("zh"):
        return "zh-CN"
    if value.lower().startswith("en"):
        return "en"
    return None


def t(key: str, lang: str = DEFAULT_LANG, **kwargs: object) -> str:
    """The text of a key in a language; the key itself when the catalogue lacks it."""
    pair = CATALOG.get(key)
    if pair is None:
        return key
    text = pair[0] if lang.startswith("zh") else pair[1]
    return text.format(**kwargs) if kwargs else text
