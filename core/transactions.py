"""Dispatching after commit: a job pushed inside a SQLAlchemy transaction waits for it.

``track_transactions()`` listens to every SQLAlchemy ``Session``. While a session's
outermost transaction is open in this thread or task, ``after_commit`` keeps the
pushes on the session and runs them when it commits; a rollback drops them.
Without an open transaction the push happens at once, as in Laravel.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

PENDING = "skyline_after_commit"

_open_sessions: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
    "skyline_open_sessions", default=()
)
_installed = False


def track_transactions() -> None:
    """Install the session listeners once; call it where the application starts."""
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    event.listen(Session, "after_transaction_create", _opened)
    event.listen(Session, "after_commit", _committed)
    event.listen(Session, "after_transaction_end", _ended)
    _installed = True


def after_commit(push: Callable[[], None]) -> bool:
    """Keep ``push`` for the open transaction's commit; False when none is open."""
    sessions = _open_sessions.get()
    if not sessions:
        return False
    sessions[-1].info.setdefault(PENDING, []).append(push)
    return True


def _opened(session: Any, transaction: Any) -> None:
    if transaction.parent is None:
        _open_sessions.set((*_open_sessions.get(), session))


def _committed(session: Any) -> None:
    for push in session.info.pop(PENDING, []):
        push()


def _ended(session: Any, transaction: Any) -> None:
    if transaction.parent is not None:
        return
    session.info.pop(PENDING, None)  # still here: the transaction rolled back
    _open_sessions.set(tuple(s for s in _open_sessions.get() if s is not session))
