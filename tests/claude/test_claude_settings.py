"""The ``[claude]`` table: defaults, TOML, environment variables and their errors."""

from __future__ import annotations

import pytest

from core.claude.cost import Usage, cost_usd, estimate_input_tokens
from core.claude.settings import ModelSettings
from core.settings import ConfigError, load_settings


def test_defaults_need_no_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    claude = load_settings(environ={}).claude

    assert (claude.api_key, claude.base_url, claude.timeout_s) == (None, None, 600)
    assert claude.default_model in claude.models
    assert (claude.tries, claude.cache_ttl_s, claude.retry_429_free) == (5, 3600, True)
    assert (claude.pending_expiry_s, claude.batch_api_threshold) == (86_400, 100)


def test_the_table_and_the_environment_configure_it(tmp_path):
    path = tmp_path / "skyline.toml"
    path.write_text(
        "[claude]\n"
        'default_model = "house"\n'
        "tries = 2\n"
        'webhook_hosts = ["Hooks.Example.com"]\n'
        "[claude.models.house]\n"
        "input_usd_per_mtok = 2.0\n"
        "output_usd_per_mtok = 10.0\n"
        "requests_per_minute = 100\n"
    )
    environ = {
        "ANTHROPIC_API_KEY": "sk-ant-from-env",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "SKYLINE_CLAUDE_WEBHOOK_SECRET": "whsec",
    }

    claude = load_settings(path, environ=environ).claude

    assert claude.api_key.get_secret_value() == "sk-ant-from-env"
    assert claude.webhook_secret.get_secret_value() == "whsec"
    assert (claude.base_url, claude.tries, claude.webhook_hosts) == (
        "http://127.0.0.1:9",
        2,
        ["hooks.example.com"],
    )
    house = claude.models["house"]
    assert list(claude.models) == ["house"]
    assert (house.cache_write_usd_per_mtok, house.cache_read_usd_per_mtok) == (2.5, 0.2)
    assert (house.requests_per_minute, house.output_tokens_per_minute) == (100, None)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[claude]\ndefault_model = "nope"\n', "default_model 'nope' is not under [claude.models]"),
        ("[claude]\nbackoff = [5, -1]\n", "backoff seconds cannot be negative"),
        ("[claude]\ntemperature = 0\n", "[claude] temperature: unknown key"),
    ],
)
def test_mistakes_are_named(tmp_path, toml, expected):
    path = tmp_path / "skyline.toml"
    path.write_text(toml)

    with pytest.raises(ConfigError, match=r"skyline\.toml") as caught:
        load_settings(path, environ={})

    assert expected in str(caught.value)


def test_a_bad_api_key_is_never_echoed(tmp_path):
    path = tmp_path / "skyline.toml"
    path.write_text("[claude]\napi_key = 42\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})

    assert "42" not in str(caught.value)


def test_cost_prices_each_kind_of_token():
    prices = ModelSettings(input_usd_per_mtok=3, output_usd_per_mtok=15)
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_creation_input_tokens=10_000,
        cache_read_input_tokens=200_000,
    )

    assert cost_usd(usage, prices) == pytest.approx(3 + 1.5 + 0.0375 + 0.06)
    assert cost_usd(Usage(), prices) == 0


def test_the_input_estimate_counts_system_text_and_blocks():
    messages = [
        {"role": "user", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 20}]},
    ]

    assert estimate_input_tokens([], None) == 1
    assert estimate_input_tokens(messages[:1], "z" * 40) == 20
    assert estimate_input_tokens(messages, None) > 15
