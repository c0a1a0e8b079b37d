import stat
from pathlib import Path

import pytest

from core.settings import ConfigError, Settings, load_settings

SECRET = "test-secret-0123456789abcdef"
OLD_SECRET = "old-secret-0123456789abcdef"


@pytest.fixture
def config(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "skyline.toml"
        path.write_text(text)
        return path

    return write


def test_defaults_apply_without_a_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert (settings.env, settings.prefix, settings.default_connection) == (
        "local",
        "skyline:",
        "redis",
    )
    assert (settings.redis_url, settings.database_url, settings.secret) == (None, None, [])
    assert settings.embedded
    assert settings.connection(None).retry_after == 30
    assert settings.connection("sync").driver == "sync"
    assert (settings.worker.tries, settings.worker.timeout) == (1, 60)


def test_toml_overrides_defaults(config):
    path = config(
        'env = "staging"\nprefix = "acme:"\n'
        "[worker]\ntries = 3\nbackoff = [1, 5]\n"
        "[connections.redis]\nretry_after = 10\n"
        '[connections.high]\nurl = "redis://high:6379/0"\n'
    )
    settings = load_settings(path, environ={})
    assert (settings.env, settings.prefix) == ("staging", "acme:")
    assert (settings.worker.tries, settings.worker.backoff, settings.worker.sleep) == (3, [1, 5], 3)
    assert settings.connection("redis").retry_after == 10
    assert settings.connection("high").url == "redis://high:6379/0"
    assert settings.connection("sync").driver == "sync"


def test_environment_overrides_toml(config):
    path = config('env = "staging"\nprefix = "acme:"\nredis_url = "redis://toml:6379/0"\n')
    environ = {"SKYLINE_ENV": "production", "REDIS_URL": "redis://env:6379/1"}
    settings = load_settings(path, environ=environ)
    assert (settings.env, settings.redis_url) == ("production", "redis://env:6379/1")
    assert settings.prefix == "acme:"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("REDIS_URL", "redis://r:6379/2", "redis_url", "redis://r:6379/2"),
        ("DATABASE_URL", "sqlite:///x.db", "database_url", "sqlite:///x.db"),
        ("SKYLINE_APP", "a.jobs, b.jobs", "app", ["a.jobs", "b.jobs"]),
        ("SKYLINE_ENV", "production", "env", "production"),
        ("SKYLINE_PREFIX", "acme:", "prefix", "acme:"),
        ("SKYLINE_STATE_DIR", "/var/lib/skyline", "state_dir", Path("/var/lib/skyline")),
    ],
)
def test_each_environment_variable_sets_its_setting(config, variable, value, field, expected):
    settings = load_settings(config(""), environ={variable: value})
    assert getattr(settings, field) == expected


def test_empty_environment_variable_is_ignored(config):
    settings = load_settings(config('env = "staging"\n'), environ={"SKYLINE_ENV": ""})
    assert settings.env == "staging"


def test_skyline_config_names_the_file(config):
    path = config('env = "from-file"\n')
    assert load_settings(environ={"SKYLINE_CONFIG": str(path)}).env == "from-file"


def test_keyword_overrides_beat_environment_and_none_is_ignored(config):
    environ = {"SKYLINE_ENV": "production", "SKYLINE_PREFIX": "env:"}
    settings = load_settings(config(""), environ=environ, env="cli", prefix=None)
    assert (settings.env, settings.prefix) == ("cli", "env:")


def test_skyline_secret_is_a_comma_list_and_the_first_key_signs(config):
    environ = {"SKYLINE_SECRET": f" {SECRET} ,{OLD_SECRET}, ", "REDIS_URL": "redis://r/0"}
    settings = load_settings(config(""), environ=environ)
    assert settings.secret == [SECRET, OLD_SECRET]
    assert settings.signing_keys() == [SECRET, OLD_SECRET]


def test_short_secret_is_refused(config):
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_settings(config(""), environ={"SKYLINE_SECRET": f"{SECRET},short"})


@pytest.mark.parametrize(
    ("toml", "environ"),
    [("", {"SKYLINE_SECRET": f"{SECRET},short"}), (f'secret = "{SECRET}"\n', {})],
    ids=["short-secret-beside-a-good-one", "secret-not-a-list"],
)
def test_secret_errors_do_not_echo_the_secret(config, toml, environ):
    with pytest.raises(ConfigError) as error:
        load_settings(config(toml), environ=environ)
    assert SECRET not in str(error.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("bogus = 1\n", "bogus: unknown key"),
        ("[worker]\nbogus = 1\n", "[worker] bogus: unknown key"),
        ("[connections.redis]\nbogus = 1\n", "[connections.redis] bogus: unknown key"),
        ("env = 5\n", "env: Input should be a valid string (got 5)"),
        ('[worker]\ntries = "three"\n', "[worker] tries: Input should be a valid integer"),
        ("connections = 5\n", "connections: Input should be a valid dictionary"),
        (
            "[connections.redis]\nretry_after = 2\n",
            "[connections.redis] retry_after: Input should be greater than or equal to 3 (got 2)",
        ),
        (
            '[connections.high]\nurl = "redis://h/0"\nretry_after = 0\n',
            "[connections.high] retry_after: Input should be greater than or equal to 3",
        ),
        ('[connections.redis]\ndriver = "kafka"\n', "[connections.redis] driver:"),
        (
            'default_connection = "nope"\n',
            "default_connection: unknown queue connection 'nope'; known connections: redis, sync",
        ),
        ("env = \n", "not valid TOML: "),
        ("[worker]\ntries = 1\n[worker]\ntries = 2\n", "not valid TOML: "),
    ],
    ids=[
        "unknown-key",
        "unknown-worker-key",
        "unknown-connection-key",
        "wrong-type",
        "wrong-nested-type",
        "connections-not-a-table",
        "retry-after-below-3",
        "retry-after-below-3-new-connection",
        "unknown-driver",
        "unknown-default-connection",
        "invalid-toml",
        "duplicate-table",
    ],
)
def test_bad_config_gives_one_line_naming_file_and_key(config, toml, message):
    path = config(toml)
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    text = str(error.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_retry_after_of_exactly_3_is_accepted(config):
    settings = load_settings(config("[connections.redis]\nretry_after = 3\n"), environ={})
    assert settings.connection("redis").retry_after == 3


@pytest.mark.parametrize(
    ("config_file", "environ"),
    [("missing.toml", {}), (None, {"SKYLINE_CONFIG": "missing.toml"})],
    ids=["argument", "SKYLINE_CONFIG"],
)
def test_missing_explicit_config_file_is_an_error(tmp_path, monkeypatch, config_file, environ):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_settings(config_file, environ=environ)
    assert str(error.value) == (
        "missing.toml: config file not found (check --config / SKYLINE_CONFIG)"
    )


def test_unknown_connection_lookup_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown queue connection 'x'; known connections: redis"):
        Settings().connection("x")


def test_shared_redis_without_a_secret_refuses_to_sign(config):
    settings = load_settings(config(""), environ={"REDIS_URL": "redis://shared:6379/0"})
    with pytest.raises(ConfigError, match="SKYLINE_SECRET is not set"):
        settings.signing_keys()


def test_embedded_default_generates_a_secret_once_and_reuses_it(config, tmp_path):
    state_dir = tmp_path / "state"
    environ = {"SKYLINE_STATE_DIR": str(state_dir)}
    first = load_settings(config(""), environ=environ).signing_keys()
    again = load_settings(config(""), environ=environ).signing_keys()
    path = state_dir / "secret"
    assert first == again == [path.read_text()]
    assert len(first[0]) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_embedded_default_reads_an_existing_state_secret(tmp_path):
    (tmp_path / "secret").write_text(f"{SECRET}\n")
    assert Settings(state_dir=tmp_path).signing_keys() == [SECRET]


def test_configured_secret_wins_over_the_state_secret(tmp_path):
    assert Settings(state_dir=tmp_path, secret=[SECRET]).signing_keys() == [SECRET]
    assert not (tmp_path / "secret").exists()


def test_sql_url_defaults_to_sqlite_in_state_dir(tmp_path):
    url = Settings(state_dir=tmp_path / "state").sql_url()
    assert url == f"sqlite:///{(tmp_path / 'state' / 'skyline.db').resolve()}"
    assert Settings(database_url="postgresql://db/x").sql_url() == "postgresql://db/x"


ALERTS_TOML = """
[metrics]
snapshot_interval = 60
retention_days = 14

[alerts]
waits = {"redis:default" = 60, "high:payments" = 5}
cooldown = 600
webhook_url = "https://hooks.example.test/skyline"

[alerts.email]
host = "smtp.example.test"
port = 587
from = "skyline@example.test"
to = ["ops@example.test"]
starttls = true
"""
ALERT_SECRETS = {
    "SKYLINE_WEBHOOK_SECRET": "webhook-secret-from-env",
    "SKYLINE_SLACK_WEBHOOK_URL": "https://hooks.slack.test/services/T/B/token",
    "SKYLINE_SMTP_USER": "mailer",
    "SKYLINE_SMTP_PASSWORD": "smtp-password-from-env",
}


def test_metrics_and_alerts_default_to_five_minutes_a_week_and_no_alerts(config):
    settings = load_settings(config(""), environ={})
    assert (settings.metrics.snapshot_interval, settings.metrics.retention_days) == (300, 7)
    assert (settings.alerts.waits, settings.alerts.cooldown) == ({}, 300)
    assert not settings.alerts.has_channels and not settings.alerts.failed_jobs


def test_alert_settings_come_from_toml_and_secrets_from_the_environment(config):
    settings = load_settings(config(ALERTS_TOML), environ=ALERT_SECRETS)
    alerts = settings.alerts
    assert settings.metrics.snapshot_interval == 60
    assert alerts.thresholds() == [("redis", "default", 60), ("high", "payments", 5)]
    assert alerts.webhook_secret.get_secret_value() == "webhook-secret-from-env"
    assert alerts.slack_webhook_url.get_secret_value().endswith("/token")
    assert (alerts.email.sender, alerts.email.port, alerts.email.user) == (
        "skyline@example.test",
        587,
        "mailer",
    )
    assert alerts.email.password.get_secret_value() == "smtp-password-from-env"
    shown = repr(settings)
    secrets = ("webhook-secret-from-env", "hooks.slack.test", "smtp-password-from-env")
    assert all(secret not in shown for secret in secrets)


def test_an_smtp_login_alone_does_not_make_an_email_channel(config):
    environ = {"SKYLINE_SMTP_USER": "mailer", "SKYLINE_SMTP_PASSWORD": "pw-0123456789"}
    assert load_settings(config(""), environ=environ).alerts.email is None


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[alerts]\nwaits = {"default" = 60}', r'\[alerts\] waits: .*is not "connection:queue"'),
        ('[alerts]\nwaits = {"redis:default" = 0}', r"waits: .*more than 0 seconds"),
        ("[metrics]\nsnapshot_interval = 0", r"\[metrics\] snapshot_interval: .*greater than"),
        ("[alerts.email]\nhost = 'x'\nto = ['a@b']", r"\[alerts.email\] from: Field required"),
    ],
)
def test_bad_alert_settings_name_the_file_and_key(config, toml, expected):
    with pytest.raises(ConfigError, match=expected):
        load_settings(config(toml), environ={})


def test_a_webhook_without_a_secret_is_refused_without_echoing_its_url(config):
    path = config('[alerts]\nwebhook_url = "https://hooks.example.test/x?token=abc123"\n')
    with pytest.raises(ConfigError, match="webhook_url needs webhook_secret") as caught:
        load_settings(path, environ={})
    assert "abc123" not in str(caught.value)


def test_the_dashboard_metrics_token_comes_from_the_environment_and_is_never_shown(config):
    environ = {"SKYLINE_METRICS_TOKEN": "scrape-me-please-123"}
    settings = load_settings(config("[dashboard]\nport = 9000\n"), environ=environ)
    assert settings.dashboard.port == 9000
    assert settings.dashboard.metrics_token.get_secret_value() == "scrape-me-please-123"
    assert "scrape-me-please-123" not in repr(settings)


def test_a_gate_must_name_a_module_and_a_function(config):
    with pytest.raises(ConfigError, match=r"\[dashboard.auth\] gate.*module.path:function"):
        load_settings(config('[dashboard.auth]\ngate = "myapp.auth.can_view"\n'), environ={})


def test_trusted_proxies_must_be_addresses_or_networks(config):
    with pytest.raises(ConfigError, match=r"trusted_proxies.*not an IP address"):
        load_settings(config('[dashboard.auth]\ntrusted_proxies = ["proxy.local"]\n'), environ={})
