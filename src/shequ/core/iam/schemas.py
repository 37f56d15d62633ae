"""Pydantic shapes of the access API: token requests and answers, unmasking, the current user."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in_days: int


class UnmaskRequest(BaseModel):
    field: str = Field(min_length=1, max_length=40, description="a personal-data column, e.g. id_number")
    purpose: str = Field(min_length=1, max_length=300, description="why the full value is needed (audited)")


class UnmaskOut(BaseModel):
    field: str
    value: str


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
