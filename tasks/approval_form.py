"""The typed form finance fills in to resume a paused approval run (Prefect ``RunInput``).

The Prefect UI renders it from its JSON schema (``approved`` as a toggle, text areas for the rest);
``renkei approvals decide`` submits exactly the same input through the same resume API.
"""

from __future__ import annotations

import re

from prefect.input import RunInput
from pydantic import Field, field_validator, model_validator

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ApprovalDecision(RunInput):
    approved: bool = Field(description="承認する (on) / 却下する (off) — approve or reject")
    approver: str = Field(description="承認者のメールアドレス — your e-mail", min_length=3, max_length=254)
    comment: str = Field(default="", description="コメント (却下の場合は必須) — required to reject", max_length=2000)

    @field_validator("approver")
    @classmethod
    def _email(cls, v: str) -> str:
        v = v.strip()
        if not _EMAIL.match(v):
            raise ValueError("approver must be an e-mail address")
        return v

    @model_validator(mode="after")
    def _comment_to_reject(self) -> "ApprovalDecision":
        if not self.approved and not self.comment.strip():
            raise ValueError("a comment is required to reject")
        return self
