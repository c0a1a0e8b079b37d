"""The ``[dashboard]`` and ``[dashboard.auth]`` tables of ``skyline.toml``."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from core.config_model import Strict

Role = Literal["viewer", "operator", "admin"]


class AuthSettings(Strict):
    # false only on a loopback address: the dashboard refuses to start otherwise
    enabled: bool = True
    gate: str | None = None  # "module:function", called with the request
    proxy_header: str | None = None  # e.g. "X-Forwarded-Email"
    trusted_proxies: list[str] = []  # addresses or networks the proxy header is taken from
    proxy_role: Role = "viewer"  # for proxy users that have no user of their own
    session_hours: float = Field(default=12, gt=0)
    secure_cookies: bool = False  # set when the dashboard is served over https
    login_attempts: int = Field(default=5, ge=1)  # failures per account (and 4x per address)
    login_window_s: int = Field(default=900, ge=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network") from None
        return values

    @field_validator("gate")
    @classmethod
    def _gate_names_a_function(cls, value: str | None) -> str | None:
        if value is not None and value.count(":") != 1:
            raise ValueError("write the gate as 'module.path:function'")
        return value


class DashboardSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    refresh_s: float = Field(default=3.0, gt=0)  # how often live parts of pages refresh
    metrics_token: SecretStr | None = None  # lets Prometheus scrape /metrics without a user
    auth: AuthSettings = AuthSettings()
