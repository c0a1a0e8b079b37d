"""Defining jobs: the ``@job`` decorator and the ``Job`` base class.

Both produce a ``JobDefinition`` in the registry. Dispatching builds a
``PreparedJob`` (definition + arguments + per-dispatch options) that a
connection turns into a payload.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from core.context import current_job
from core.registry import registry
from core.serialization import ArgumentError

OPTION_NAMES = (
    "queue",
    "connection",
    "delay",
    "tries",
    "max_exceptions",
    "backoff",
    "timeout",
    "retry_until",
    "fail_on_timeout",
    "tags",
    "delete_when_missing_models",
    "after_commit",
)
Delay = float | int | dt.timedelta | dt.datetime


@dataclasses.dataclass(frozen=True)
class JobOptions:
    queue: str | None = None
    connection: str | None = None
    delay: Delay | None = None
    tries: int | None = None
    max_exceptions: int | None = None
    backoff: int | list[int] | None = None
    timeout: float | None = None
    retry_until: Delay | None = None
    fail_on_timeout: bool | None = None
    tags: list[str] | None = None
    delete_when_missing_models: bool | None = None
    after_commit: bool | None = None

    def merged(self, **overrides: Any) -> JobOptions:
        unknown = set(overrides) - set(OPTION_NAMES)
        if unknown:
            raise TypeError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(given.get("backoff"), tuple):
            given["backoff"] = list(given["backoff"])
        return dataclasses.replace(self, **given)


@dataclasses.dataclass(frozen=True)
class JobDefinition:
    name: str
    target: Callable[..., Any]
    is_class: bool
    options: JobOptions
    on_failed: Callable[..., Any] | None = None
    middleware: tuple[Any, ...] = ()
    unique_for: float | None = None
    unique_until_processing: bool = False
    unique_id: Callable[..., Any] | None = None

    def unique_id_for(self, args: list[Any], kwargs: dict[str, Any]) -> str:
        """The identity of a unique job: one lock per job name and this value."""
        if self.is_class:
            instance = self.target.__new__(self.target)
            instance.__dict__.update(kwargs)
            return str(instance.unique_id())
        return str(self.unique_id(*args, **kwargs)) if self.unique_id else ""

    def tags_for(self, args: list[Any], kwargs: dict[str, Any]) -> list[str]:
        """A class job's ``tags()`` method, when it defines one instead of a ``tags`` list."""
        if not self.is_class or not callable(getattr(self.target, "tags", None)):
            return []
        instance = self.target.__new__(self.target)
        instance.__dict__.update(kwargs)
        return [str(tag) for tag in instance.tags()]

    def middleware_for(self, instance: Any) -> list[Any]:
        """A class job's ``middleware()`` (it may use the job's data), else the decorator's."""
        if instance is not None and hasattr(instance, "middleware"):
            return list(instance.middleware())
        return list(self.middleware)

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.target)

    def build(self, args: list[Any], kwargs: dict[str, Any]) -> Callable[[], Any]:
        """The call that runs the job with decoded arguments; raises ArgumentError on a mismatch."""
        if self.is_class:
            instance = self.target.__new__(self.target)
            instance.__dict__.update(kwargs)
            return instance.handle
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentError(f"arguments do not match {self.name}: {exc}") from None
        return lambda: self.target(*args, **kwargs)

    def call_failed_hook(
        self, handle: Callable[[], Any] | None, args: list, kwargs: dict, exc: BaseException
    ) -> None:
        if self.is_class and handle is not None:
            handle.__self__.failed(exc)
        elif self.on_failed is not None:
            self.on_failed(exc, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class PreparedJob:
    """A job with its arguments, ready to dispatch alone, in bulk, or (later) in a chain."""

    definition: JobDefinition
    args: list[Any]
    kwargs: dict[str, Any]
    options: JobOptions

    def dispatch(self) -> str | None:
        from core.dispatcher import get_dispatcher

        return get_dispatcher().dispatch([self])[0]


class PendingOptions:
    """What ``send_welcome.options(queue="high")`` returns."""

    def __init__(self, definition: JobDefinition, options: JobOptions) -> None:
        self._definition = definition
        self._options = options

    def prepare(self, *args: Any, **kwargs: Any) -> PreparedJob:
        return PreparedJob(self._definition, list(args), kwargs, self._options)

    def dispatch(self, *args: Any, **kwargs: Any) -> str | None:
        return self.prepare(*args, **kwargs).dispatch()


class FunctionJob:
    """A function registered as a job; calling it still runs it directly."""

    def __init__(self, definition: JobDefinition) -> None:
        self.definition = definition
        self.__wrapped__ = definition.target
        self.__doc__ = definition.target.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.definition.target(*args, **kwargs)

    @property
    def name(self) -> str:
        return self.definition.name

    def options(self, **overrides: Any) -> PendingOptions:
        return PendingOptions(self.definition, self.definition.options.merged(**overrides))

    def prepare(self, *args: Any, **kwargs: Any) -> PreparedJob:
        return PreparedJob(self.definition, list(args), kwargs, self.definition.options)

    def dispatch(self, *args: Any, **kwargs: Any) -> str | None:
        return self.prepare(*args, **kwargs).dispatch()


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    on_failed: Callable[..., Any] | None = None,
    middleware: list[Any] | None = None,
    unique: bool = False,
    unique_for: float = 0,
    unique_until_processing: bool = False,
    unique_id: Callable[..., Any] | None = None,
    **options: Any,
) -> Any:
    """Register a function as a job: ``@job`` or ``@job(queue="emails", tries=3)``.

    ``unique=True`` keeps a second copy (same name and ``unique_id(*args)``) from being
    queued while one waits or runs; ``unique_for`` seconds bound the lock (0: until done).
    """

    def register(target: Callable[..., Any]) -> FunctionJob:
        definition = JobDefinition(
            name=name or f"{target.__module__}.{target.__qualname__}",
            target=target,
            is_class=False,
            options=JobOptions().merged(**options),
            on_failed=on_failed,
            middleware=tuple(middleware or ()),
            unique_for=unique_for if unique else None,
            unique_until_processing=unique_until_processing,
            unique_id=unique_id,
        )
        registry.add(definition)
        return FunctionJob(definition)

    return register(fn) if fn is not None else register


class Job:
    """Base class for class-based jobs: define ``handle()`` (sync or async).

    Public instance attributes are the job's data: they travel in the payload
    and are set again, without calling ``__init__``, in the worker.
    """

    name: ClassVar[str | None] = None
    queue: ClassVar[str | None] = None
    connection: ClassVar[str | None] = None
    delay: ClassVar[Delay | None] = None
    tries: ClassVar[int | None] = None
    max_exceptions: ClassVar[int | None] = None
    backoff: ClassVar[int | list[int] | None] = None
    timeout: ClassVar[float | None] = None
    retry_until: ClassVar[Delay | None] = None
    fail_on_timeout: ClassVar[bool | None] = None
    tags: ClassVar[list[str] | None] = None  # or define ``def tags(self) -> list[str]``
    delete_when_missing_models: ClassVar[bool | None] = None
    after_commit: ClassVar[bool | None] = None
    unique: ClassVar[bool] = False
    unique_for: ClassVar[float] = 0
    unique_until_processing: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        given = {o: getattr(cls, o) for o in OPTION_NAMES}
        if callable(given["tags"]):  # a tags() method: called per job, at dispatch
            given["tags"] = None
        options = JobOptions().merged(**given)
        definition = JobDefinition(
            registered_name(cls),
            cls,
            is_class=True,
            options=options,
            unique_for=cls.unique_for if cls.unique else None,
            unique_until_processing=cls.unique_until_processing,
        )
        registry.add(definition)

    def handle(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define handle()")

    def failed(self, exc: BaseException) -> None:
        """Called once when the job has failed for good."""

    def unique_id(self) -> str:
        """For ``unique = True`` jobs: copies with the same value are not queued twice."""
        return ""

    def middleware(self) -> list[Any]:
        """Middleware around ``handle``; override to add some (it may use the job's data)."""
        return []

    def prepare(self, **overrides: Any) -> PreparedJob:
        definition = registry.get(registered_name(type(self)))
        data = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return PreparedJob(definition, [], data, definition.options.merged(**overrides))

    def options(self, **overrides: Any) -> PreparedJob:
        return self.prepare(**overrides)

    def dispatch(self) -> str | None:
        return self.prepare().dispatch()

    @property
    def attempts(self) -> int:
        return current_job().attempts

    @property
    def job_id(self) -> str:
        return current_job().job_id

    def release(self, delay: float = 0) -> None:
        current_job().release(delay)

    def delete(self) -> None:
        current_job().delete()

    def fail(self, reason: str | BaseException = "failed by the job") -> None:
        current_job().fail(reason)


def registered_name(cls: type) -> str:
    return cls.__dict__.get("name") or f"{cls.__module__}.{cls.__qualname__}"
