"""Tokens: generated here, shown once, stored only as SHA-256 hashes.

Four kinds, told apart by prefix so a token pasted in the wrong place gets a clear error:
``cwa_`` admin, ``cwr_`` researcher (reads exact probe ids and times), ``cwe_`` enrolment
(lets a new probe register), ``cwp_`` probe. The admin token lives in a file readable
only by the operator: when the file exists (a Kubernetes Secret, say) its token is the
admin token, replacing any earlier one, so rotating is writing a new file and restarting;
when it does not, the first start creates a token and writes the file, and replicas
starting together agree on one through the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database, as_utc

Kind = Literal["admin", "researcher", "enrolment", "probe"]
PREFIXES: Final[dict[Kind, str]] = {
    "admin": "cwa_",
    "researcher": "cwr_",
    "enrolment": "cwe_",
    "probe": "cwp_",
}
Access = Literal["public", "researcher", "admin"]
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


class AdminTokenFileError(ValueError):
    """The admin token file exists but holds no usable admin token."""


@dataclass(frozen=True)
class AdminBootstrap:
    """What the start did: ``created`` if this process wrote the token file."""

    created: bool
    path: Path
    provided: bool = False


def _write_secret(path: Path, secret: str) -> None:
    """Written whole to a new 0600 file, then renamed over ``path``: never half a token,
    and never the mode of an older, more readable file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    os.replace(fresh, path)


def read_admin_token(path: Path) -> str | None:
    """The admin token in ``path``; None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AdminTokenFileError(f"admin token file {path}: cannot read: {exc}") from exc
    if not text.startswith(PREFIXES["admin"]) or len(text) < 24 or any(c.isspace() for c in text):
        raise AdminTokenFileError(
            f"admin token file {path}: expected one admin token ({PREFIXES['admin']}…, "
            "at least 24 characters); create one with `censorwatch admin-token new`"
        )
    return text


async def install_admin_token(db: Database, token: str) -> None:
    """Make ``token`` the admin token; every earlier admin token stops working."""
    t = schema.admin_tokens
    async with db.writing() as connection:
        await connection.execute(delete(t).where(t.c.token_hash != token_hash(token)))
        await connection.execute(
            db.insert(t)
            .values(token_hash=token_hash(token), label=_BOOTSTRAP_LABEL, created_at=utc_now())
            .on_conflict_do_nothing()
        )


async def rotate_admin_token(db: Database, path: Path) -> None:
    """A new admin token, written to ``path`` (0600) and installed; the old one is void."""
    token = new_token("admin")
    _write_secret(path, token)
    await install_admin_token(db, token)


async def ensure_admin_token(db: Database, path: Path) -> AdminBootstrap:
    """The file's admin token if there is a file; else create the first one and write it."""
    provided = read_admin_token(path)
    if provided is not None:
        await install_admin_token(db, provided)
        return AdminBootstrap(False, path, provided=True)
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


async def check_researcher(connection: AsyncConnection, token: str) -> None:
    r = schema.researcher_tokens
    query = select(r.c.expires_at).where(r.c.token_hash == token_hash(token))
    row = (await connection.execute(query)).first()
    if row is None:
        raise AuthError(401, "unknown researcher token")
    expires = row.expires_at
    if expires is not None and as_utc(expires) <= utc_now():
        raise AuthError(401, "researcher token has expired; ask the operator for a new one")


async def access_of(connection: AsyncConnection, header: str | None) -> Access:
    """What a reader may see: public without a token; a wrong token is refused, not ignored."""
    if not header:
        return "public"
    _, _, token = header.strip().partition(" ")
    if token.strip().startswith(PREFIXES["researcher"]):
        await check_researcher(connection, bearer_token(header, "researcher"))
        return "researcher"
    await check_admin(connection, header)
    return "admin"


async def check_admin(connection: AsyncConnection, header: str | None) -> None:
    token = bearer_token(header, "admin")
    query = select(schema.admin_tokens.c.label).where(
        schema.admin_tokens.c.token_hash == token_hash(token)
    )
    if (await connection.execute(query)).first() is None:
        raise AuthError(401, "unknown admin token")
