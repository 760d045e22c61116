"""Tokens: generated here, shown once, stored only as SHA-256 hashes.

Three kinds, told apart by prefix so a token pasted in the wrong place gets a clear error:
``cwa_`` admin, ``cwe_`` enrolment (lets a new probe register), ``cwp_`` probe. The first
admin token is created on the first start and written to a file readable only by the
operator; replicas starting together agree on one through the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database

Kind = Literal["admin", "enrolment", "probe"]
PREFIXES: Final[dict[Kind, str]] = {"admin": "cwa_", "enrolment": "cwe_", "probe": "cwp_"}
_BOOTSTRAP_LABEL: Final = "bootstrap"


class AuthError(Exception):
    """A request whose credentials do not allow it; ``status`` is 401 or 403."""

    def __init__(self, status: int, problem: str) -> None:
        self.status = status
        self.problem = problem
        super().__init__(problem)


def new_token(kind: Kind) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None, kind: Kind) -> str:
    """The token in an ``Authorization: Bearer …`` header, checked for its kind."""
    if not header:
        raise AuthError(401, f"missing Authorization: Bearer <{kind} token>")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "Authorization header must be 'Bearer <token>'")
    if not token.startswith(PREFIXES[kind]):
        raise AuthError(401, f"not a {kind} token (expected the prefix {PREFIXES[kind]!r})")
    return token


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class AdminBootstrap:
    """What the first start did: the path of the token file, if this process wrote it."""

    created: bool
    path: Path


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")


async def ensure_admin_token(db: Database, path: Path) -> AdminBootstrap:
    """Create the first admin token unless one exists; only the creator writes the file."""
    token = new_token("admin")
    statement = (
        db.insert(schema.admin_tokens)
        .values(token_hash=token_hash(token), label=_BOOTSTRAP_LABEL, created_at=utc_now())
        .on_conflict_do_nothing()
    )
    async with db.writing() as connection:
        created = (await connection.execute(statement)).rowcount == 1
        if created:
            _write_secret(path, token)
    return AdminBootstrap(created, path)


async def check_admin(connection: AsyncConnection, header: str | None) -> None:
    token = bearer_token(header, "admin")
    query = select(schema.admin_tokens.c.label).where(
        schema.admin_tokens.c.token_hash == token_hash(token)
    )
    if (await connection.execute(query)).first() is None:
        raise AuthError(401, "unknown admin token")
