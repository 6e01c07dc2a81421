"""Who may do what through the session API.

API Gateway's JWT authorizer has already checked the token (signature, issuer, audience,
expiry) before a handler runs; what reaches the handler is the token's claims. The rules:

- a student (any signed-in user) starts, reads and answers only their own sessions; their
  user name in the user pool *is* their opaque student id (no names or e-mail addresses);
- a teacher (member of the ``teachers`` group) also lists a test's sessions and reads any
  session; teachers do not start or answer sessions for others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TEACHERS_GROUP = "teachers"


class Unauthenticated(Exception):
    """No identity in the request (401)."""


class Forbidden(Exception):
    """An identity, but not allowed to do this (403)."""


def _groups(value: Any) -> frozenset[str]:
    # API Gateway hands array claims to the integration as one string, "[a b]"; tests and other
    # front doors may pass a real list.
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.strip().strip("[]").replace(",", " ").split())
    return frozenset(str(v) for v in value)


@dataclass(frozen=True)
class Caller:
    """The signed-in user behind a request."""

    user_id: str
    groups: frozenset[str] = frozenset()

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any] | None) -> Caller:
        """From a Cognito ID token's claims (``cognito:username``, ``cognito:groups``); an access
        token's ``username`` is accepted too."""
        claims = claims or {}
        user = claims.get("cognito:username") or claims.get("username")
        if not user:
            raise Unauthenticated("sign in first: the request carries no user identity")
        return cls(user_id=str(user), groups=_groups(claims.get("cognito:groups")))

    @property
    def is_teacher(self) -> bool:
        return TEACHERS_GROUP in self.groups

    def require_student(self, student_id: str) -> None:
        """Starting or answering a session: only as oneself."""
        if student_id != self.user_id:
            raise Forbidden(f"signed in as {self.user_id}: you can only act as yourself, not as {student_id}")

    def require_reader(self, student_id: str) -> None:
        """Reading a session: its student, or a teacher."""
        if student_id != self.user_id and not self.is_teacher:
            raise Forbidden("this session belongs to another student")

    def require_teacher(self) -> None:
        """Listing a test's sessions."""
        if not self.is_teacher:
            raise Forbidden(f"only members of the '{TEACHERS_GROUP}' group can list a test's sessions")
