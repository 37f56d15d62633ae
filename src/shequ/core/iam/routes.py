"""Routes of access control: what each role may do, read and edited by an administrator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from shequ.core.iam import service as iam
from shequ.core.iam.models import Role, User
from shequ.web.deps import SessionDep, lang_of, require
from shequ.web.records import BadParam

api = APIRouter(tags=["access"])
ApiAdmin = Annotated[User, Depends(require(iam.MANAGE_USERS, api=True))]


class RolePermissionsIn(BaseModel):
    permissions: list[str] = Field(description="permission codes, e.g. registry.read, pii.unmask")


class PermissionOut(BaseModel):
    code: str
    label: str
    granted: bool


class RolePermissionsOut(BaseModel):
    role: str
    role_label: str
    permissions: list[str]
    known: list[PermissionOut]


def _role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise HTTPException(status_code=404, detail=f"未知角色 {role} (unknown role)") from None


def _answer(request: Request, session: Any, role: str) -> RolePermissionsOut:
    lang = lang_of(request)
    granted = iam.role_permissions(session=session).get(role, frozenset())
    known = [PermissionOut(code=code, granted=code in granted,
                           label=iam.PERMISSION_LABELS[code][0 if lang.startswith("zh") else 1])
             for code in iam.known_permissions()]
    return RolePermissionsOut(role=role, role_label=iam.role_label(role, lang),
                              permissions=sorted(granted), known=known)


@api.get("/roles/{role}/permissions", response_model=RolePermissionsOut,
         summary="What a role may do in this subdistrict")
def get_role_permissions(request: Request, role: str, session: SessionDep, user: ApiAdmin) -> Any:
    return _answer(request, session, _role(role))


@api.put("/roles/{role}/permissions", response_model=RolePermissionsOut,
         summary="Replace what a role may do (audited)")
def put_role_permissions(request: Request, role: str, body: RolePermissionsIn, session: SessionDep,
                         user: ApiAdmin) -> Any:
    role = _role(role)
    try:
        iam.set_role_permissions(session=session, role=role, permissions=body.permissions)
    except ValueError as exc:
        raise BadParam("permissions", str(exc)) from None
    return _answer(request, session, role)
