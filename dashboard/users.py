"""Dashboard users and API tokens in SQL: argon2 for passwords, SHA-256 for tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from core.models import ApiToken, User

ROLES = ("viewer", "operator", "admin")  # each role may do what the ones before it may
MIN_PASSWORD_CHARS = 12
TOKEN_PREFIX = "sky_"


class UserError(ValueError):
    """A user or token cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class UserRecord:
    id: int
    email: str
    role: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def role_allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


class UserRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hasher = PasswordHasher()
        # Verified when the account does not exist, so both cases take as long.
        self._decoy = self.hasher.hash(secrets.token_urlsafe(16))

    def add(self, email: str, password: str, role: str) -> UserRecord:
        email = normalise_email(email)
        check_role(role)
        if len(password) < MIN_PASSWORD_CHARS:
            raise UserError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
        values = {
            "email": email,
            "password_hash": self.hasher.hash(password),
            "role": role,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(User.__table__.insert().values(**values))
        except IntegrityError:
            raise UserError(f"a user {email} exists already (remove it first)") from None
        user = self.by_email(email)
        assert user is not None
        return user

    def authenticate(self, email: str, password: str) -> UserRecord | None:
        try:
            email = normalise_email(email)
        except UserError:
            email = ""
        with self.engine.connect() as connection:
            row = connection.execute(select(User).where(User.email == email)).first()
        try:
            self.hasher.verify(row.password_hash if row else self._decoy, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            connection.execute(update(User).where(User.id == row.id).values(last_login_at=now))
        return _user(row)

    def get(self, id: int) -> UserRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(User).where(User.id == id)).first()
        return _user(row) if row else None

    def by_email(self, email: str) -> UserRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(User).where(User.email == normalise_email(email))
            ).first()
        return _user(row) if row else None

    def list(self) -> list[UserRecord]:
        with self.engine.connect() as connection:
            return [_user(r) for r in connection.execute(select(User).order_by(User.email))]

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(User)).scalar_one()

    def remove(self, email: str) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(delete(User).where(User.email == normalise_email(email)))
        return deleted.rowcount > 0


class TokenRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, role: str) -> str:
        """A new token, returned once: only its hash is stored."""
        check_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        values = {
            "name": name,
            "token_hash": _digest(token),
            "role": role,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(ApiToken.__table__.insert().values(**values))
        except IntegrityError:
            raise UserError(f"a token named {name!r} exists already (revoke it first)") from None
        return token

    def verify(self, token: str) -> TokenRecord | None:
        digest = _digest(token)
        with self.engine.begin() as connection:
            row = connection.execute(select(ApiToken).where(ApiToken.token_hash == digest)).first()
            if row is None:
                return None
            connection.execute(
                update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=datetime.now(UTC))
            )
        return _token(row)

    def list(self) -> list[TokenRecord]:
        with self.engine.connect() as connection:
            return [_token(r) for r in connection.execute(select(ApiToken).order_by(ApiToken.name))]

    def revoke(self, name: str) -> bool:
        with self.engine.begin() as connection:
            deleted = connection.execute(delete(ApiToken).where(ApiToken.name == name))
        return deleted.rowcount > 0


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 255:
        raise UserError(f"{email!r} is not an email address")
    return email


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: User) -> UserRecord:
    return UserRecord(row.id, row.email, row.role, row.created_at, row.last_login_at)


def _token(row: ApiToken) -> TokenRecord:
    return TokenRecord(row.id, row.name, row.role, row.created_at, row.last_used_at)
