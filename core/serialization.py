"""JSON encoding of job arguments.

Only JSON ever reaches Redis. Richer values travel as one-key tagged objects
(``{"$uuid": "..."}``). Dataclasses and SQLAlchemy models are named by
``module:qualname``, but decoding only *looks up* classes in modules the
process has already imported; it never imports a name read from Redis.
SQLAlchemy instances travel as class + primary key and are loaded fresh in the
worker, like Laravel's SerializesModels.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

TAG_PREFIX = "$"


class ArgumentError(TypeError):
    """A value cannot be encoded, or an encoded value cannot be decoded."""


class ModelNotFoundError(LookupError):
    """A model instance passed to a job no longer exists in its database."""


SessionOpener = Callable[[], Any]

_model_session: SessionOpener | None = None


def use_model_session(session_factory: SessionOpener) -> None:
    """Tell Skyline how to open a session to reload the application's models in workers."""
    global _model_session
    _model_session = session_factory


_TAGGED_SCALARS: tuple[tuple[type, str, Callable[[Any], str]], ...] = (
    (dt.datetime, "$datetime", dt.datetime.isoformat),  # before date: a datetime is a date
    (dt.date, "$date", dt.date.isoformat),
    (uuid.UUID, "$uuid", str),
    (Decimal, "$decimal", str),
)


def encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ArgumentError(f"{value} is not valid JSON: send None or a string instead")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return _encode_dict(value)
    for cls, tag, as_text in _TAGGED_SCALARS:
        if isinstance(value, cls):
            return {tag: as_text(value)}
    return _encode_object(value)


def _encode_object(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$dataclass": _class_path(type(value)), "fields": fields}
    if hasattr(type(value), "__mapper__"):
        return {"$model": _class_path(type(value)), "pk": _primary_key(value)}
    raise ArgumentError(
        f"cannot send a {type(value).__name__} to a job: use JSON types, datetime, date, "
        "UUID, Decimal, a dataclass or a SQLAlchemy model instance"
    )


def _encode_dict(value: dict) -> dict:
    for key in value:
        if not isinstance(key, str):
            raise ArgumentError(f"dict keys sent to a job must be strings, not {key!r}")
        if key.startswith(TAG_PREFIX):
            raise ArgumentError(f"dict keys sent to a job must not start with '$': {key!r}")
    return {k: encode(v) for k, v in value.items()}


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _primary_key(instance: Any) -> Any:
    from sqlalchemy import inspect

    identity = inspect(instance).identity
    if identity is None:
        raise ArgumentError(f"{type(instance).__name__} has no primary key yet: flush it first")
    return encode(identity[0] if len(identity) == 1 else list(identity))


def model_tags(encoded: Any) -> list[str]:
    """``ClassName:pk`` for each SQLAlchemy model in already encoded arguments."""
    if isinstance(encoded, list):
        return [tag for value in encoded for tag in model_tags(value)]
    if not isinstance(encoded, dict):
        return []
    if isinstance(encoded.get("$model"), str) and "pk" in encoded:
        pk = encoded["pk"]
        key = ",".join(map(str, pk)) if isinstance(pk, list) else pk
        return [f"{encoded['$model'].rpartition(':')[2].rpartition('.')[2]}:{key}"]
    values = encoded["fields"].values() if "$dataclass" in encoded else encoded.values()
    return [tag for value in values for tag in model_tags(value)]


class Decoder:
    """Decodes one job's arguments; holds the session models were loaded in."""

    def __init__(self) -> None:
        self.session: Any = None

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        tag = next(iter(value), "") if len(value) in (1, 2) else ""
        if tag.startswith(TAG_PREFIX):
            return self._decode_tagged(tag, value)
        return {k: self.decode(v) for k, v in value.items()}

    def _decode_tagged(self, tag: str, value: dict) -> Any:
        raw = value[tag]
        try:
            if tag == "$datetime":
                return dt.datetime.fromisoformat(raw)
            if tag == "$date":
                return dt.date.fromisoformat(raw)
            if tag == "$uuid":
                return uuid.UUID(raw)
            if tag == "$decimal":
                return Decimal(raw)
            if tag == "$dataclass":
                cls = _loaded_class(raw, dataclasses.is_dataclass)
                return _dataclass(cls, {k: self.decode(v) for k, v in value["fields"].items()})
            if tag == "$model":
                return self._load_model(raw, self.decode(value["pk"]))
        except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            raise ArgumentError(f"malformed {tag} argument: {exc}") from exc
        raise ArgumentError(f"unknown argument tag {tag!r}")

    def _load_model(self, path: str, pk: Any) -> Any:
        cls = _loaded_class(path, lambda c: hasattr(c, "__mapper__"))
        if _model_session is None:
            raise ArgumentError(
                f"a job received a {cls.__name__} but no model session is set: "
                "call core.use_model_session(Session) in your app module"
            )
        if self.session is None:
            self.session = _model_session()
        instance = self.session.get(cls, tuple(pk) if isinstance(pk, list) else pk)
        if instance is None:
            raise ModelNotFoundError(f"{cls.__name__} with primary key {pk!r} no longer exists")
        return instance

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def _dataclass(cls: type, fields: dict[str, Any]) -> Any:
    """Rebuild through ``__init__``, then restore ``init=False`` fields as they were."""
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    instance = cls(**{k: v for k, v in fields.items() if k in init})
    for name in fields.keys() - init:
        if name not in {f.name for f in dataclasses.fields(cls)}:
            raise ArgumentError(f"{cls.__name__} has no field {name!r}")
        object.__setattr__(instance, name, fields[name])
    return instance


def _loaded_class(path: str, accept: Callable[[type], bool]) -> type:
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if not isinstance(target, type) or not accept(target):
        raise ArgumentError(
            f"{path!r} is not a loaded dataclass or model: the worker must import its module "
            "(list it in the app setting)"
        )
    return target
