"""Photos and files attached to a case: checked by their magic bytes, stored once under
``var/files/<sha256[:2]>/<sha256>`` and listed with the case."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.config import get_settings
from shequ.core.cases.models import Case, CaseAttachment
from shequ.core.cases.service import CaseError

MAX_BYTES = 10 * 1024 * 1024
ALLOWED = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "application/pdf": ".pdf"}
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_PHOTOS = 6  # photos with one report (patrol, resident)
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves show (JPEG, PNG, WebP or PDF), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def file_path(sha256: str) -> Path:
    """Where the bytes of a file with this SHA-256 are kept."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return get_settings().var_dir / "files" / sha256[:2] / sha256


def _clean_name(name: str, content_type: str) -> str:
    base = _UNSAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip(" .") or "file"
    stem, dot, ext = base.rpartition(".")
    wanted = ALLOWED[content_type]
    if not dot or f".{ext.lower()}" not in (wanted, ".jpeg" if wanted == ".jpg" else wanted):
        base = f"{base}{wanted}"  # the name says what the bytes are
    return base[-200:]


def _write_once(path: Path, data: bytes) -> None:
    if path.exists() and path.stat().st_size == len(data):
        return  # content-addressed: the same bytes are there already
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_attachment(*, session: Session, case: Case, name: str, data: bytes, uploaded_by: str,
                   step_id: int | None = None) -> CaseAttachment:
    """Keep a file with a case: at most 10 MB, JPEG/PNG/WebP or PDF by its bytes (CaseError otherwise)."""
    if not data:
        raise CaseError("file", "文件是空的（the file is empty）")
    if len(data) > MAX_BYTES:
        raise CaseError("file", "文件超过 10 MB（larger than 10 MB）")
    content_type = sniff(data)
    if content_type is None:
        raise CaseError("file", "只接受 JPEG、PNG、WebP 图片或 PDF 文件（only JPEG, PNG, WebP or PDF; "
                                "the content is checked, not the name）")
    digest = hashlib.sha256(data).hexdigest()
    _write_once(file_path(digest), data)
    row = CaseAttachment(case_id=case.id, step_id=step_id, name=_clean_name(name or "file", content_type),
                         content_type=content_type, size=len(data), sha256=digest,
                         uploaded_by=uploaded_by[:100])
    session.add(row)
    session.flush()
    return row


def list_attachments(*, session: Session, case_id: int) -> list[CaseAttachment]:
    """A case's attachments, oldest first."""
    return list(session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == case_id)
                                .order_by(CaseAttachment.id)))


def get_attachment(*, session: Session, case_id: int, attachment_id: int) -> CaseAttachment | None:
    """One attachment of a case (None when the case has no such attachment)."""
    return session.scalar(select(CaseAttachment).where(CaseAttachment.id == attachment_id,
                                                       CaseAttachment.case_id == case_id))


def read_attachment(attachment: CaseAttachment) -> bytes | None:
    """The stored bytes (None when the file is missing from var/files)."""
    path = file_path(attachment.sha256)
    return path.read_bytes() if path.is_file() else None


@dataclass(frozen=True)
class Photo:
    """A photo as uploaded with a report: its file name and its bytes."""

    name: str
    data: bytes


def check_photos(photos: Sequence[Photo]) -> tuple[list[Photo], str | None]:
    """The photos of one report and why they are refused (the first problem, in Chinese and
    English) or None. A file input left empty sends a part with no name and no bytes: dropped.
    The type is judged by the bytes, never by the name."""
    chosen = [p for p in photos if p.data or p.name]
    if len(chosen) > MAX_PHOTOS:
        return chosen, f"最多 {MAX_PHOTOS} 张照片（at most {MAX_PHOTOS} photos）"
    for photo in chosen:
        label = photo.name or "photo"
        if not photo.data:
            return chosen, f"{label}：文件是空的（the file is empty）"
        if len(photo.data) > MAX_BYTES:
            return chosen, f"{label}：超过 10 MB（larger than 10 MB）"
        if sniff(photo.data) not in PHOTO_TYPES:
            return chosen, f"{label}：只接受 JPEG、PNG 或 WebP 照片，按内容判断（only JPEG, PNG or WebP photos, judged by content）"
    return chosen, None
