import json
import pickle

import pytest

from core.payload import Payload, PayloadError, build, envelope, parse, peek, sign

KEY = "current-secret-0123456789"
OLD_KEY = "previous-secret-0123456789"
BODY = {
    "id": "job-1",
    "job": "tests.jobs.noop",
    "queue": "default",
    "connection": "redis",
    "args": [1],
    "options": {"tries": 3},
}


def signed(body=BODY, key: str = KEY, **fields) -> str:
    """An envelope whose body is ``body`` as given (any JSON value), signed with ``key``."""
    body_json = json.dumps(body)
    return json.dumps({"body": body_json, "sig": sign(body_json, key), **fields})


def tampered() -> str:
    outer = json.loads(build(BODY, KEY, available_at=0))
    outer["body"] = outer["body"].replace('"args":[1]', '"args":[2]')
    assert outer["body"] != json.loads(build(BODY, KEY, available_at=0))["body"]
    return json.dumps(outer)


def test_build_then_parse_round_trips_body_and_envelope():
    raw = build(BODY, KEY, available_at=1_234)
    payload = parse(raw, [KEY])
    assert payload.raw == raw
    assert payload.body == BODY
    assert (payload.id, payload.job_name, payload.queue, payload.connection) == (
        "job-1",
        "tests.jobs.noop",
        "default",
        "redis",
    )
    assert (payload.attempts, payload.exceptions, payload.lost) == (0, 0, 0)
    assert payload.lease is None
    assert payload.available_at == 1_234


def test_parse_accepts_bytes_as_redis_returns_them():
    raw = build(BODY, KEY, available_at=0)
    assert parse(raw.encode(), [KEY]).body == BODY


def test_option_falls_back_to_default_when_absent():
    payload = parse(build(BODY, KEY, available_at=0), [KEY])
    assert payload.option("tries") == 3
    assert payload.option("timeout") is None
    assert payload.option("timeout", 60) == 60


def test_envelope_fields_are_outside_the_signature():
    raw = signed(attempts=4, exceptions=2, lost=1, lease="token-1", reserved_at=99)
    payload = parse(raw, [KEY])
    assert (payload.attempts, payload.exceptions, payload.lost) == (4, 2, 1)
    assert (payload.lease, payload.reserved_at) == ("token-1", 99)


def test_payload_signed_by_an_older_key_in_the_list_verifies():
    raw = build(BODY, OLD_KEY, available_at=0)
    assert parse(raw, [KEY, OLD_KEY]).body == BODY


def test_payload_signed_by_a_key_not_in_the_list_is_refused():
    raw = build(BODY, "retired-secret-0123456789", available_at=0)
    with pytest.raises(PayloadError, match="signature does not match"):
        parse(raw, [KEY, OLD_KEY])


def test_no_configured_keys_verifies_nothing():
    with pytest.raises(PayloadError, match="signature"):
        parse(build(BODY, KEY, available_at=0), [])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (json.dumps({"body": json.dumps(BODY)}), "no signed body"),
        (json.dumps({"body": json.dumps(BODY), "sig": None}), "no signed body"),
        (json.dumps({"body": BODY, "sig": sign(json.dumps(BODY), KEY)}), "no signed body"),
        (json.dumps(BODY), "no signed body"),
        (tampered(), "signature does not match"),
        (signed(key="attacker-secret-0123456789"), "signature does not match"),
        ('{"body": "{}", "sig": ', "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2, 3]", "JSON but not an object"),
        ('"a string"', "JSON but not an object"),
        ("null", "JSON but not an object"),
        (pickle.dumps({"body": "{}", "sig": "x"}), "not valid JSON"),
        (pickle.dumps(BODY, protocol=0), "not valid JSON"),
        (signed(body=[1, 2]), "payload body is JSON but not an object"),
        (signed(body="text"), "payload body is JSON but not an object"),
        (signed(body={"id": "x", "job": "j", "queue": "q"}), "lacks connection"),
        (signed(body={"id": 1, "job": "j", "queue": "q", "connection": "c"}), "lacks id"),
        (signed(body={}), "lacks id, job, queue, connection"),
    ],
    ids=[
        "no-sig",
        "null-sig",
        "body-not-a-string",
        "bare-body",
        "tampered-body",
        "wrong-key",
        "truncated-json",
        "empty",
        "json-array",
        "json-string",
        "json-null",
        "pickle",
        "pickle-protocol-0",
        "body-array",
        "body-string",
        "body-missing-field",
        "body-non-string-id",
        "body-empty",
    ],
)
def test_bad_payloads_raise_payload_error(raw, message):
    with pytest.raises(PayloadError, match=message):
        parse(raw, [KEY])


def test_non_ascii_signature_raises_payload_error():
    raw = json.dumps({"body": json.dumps(BODY), "sig": "é" * 32})
    with pytest.raises(PayloadError):
        parse(raw, [KEY])


def test_envelope_counter_too_large_for_an_int_raises_payload_error():
    raw = signed()[:-1] + ', "attempts": 1e400}'
    assert json.loads(raw)["attempts"] == float("inf")
    with pytest.raises(PayloadError):
        parse(raw, [KEY])


def test_deeply_nested_json_raises_payload_error():
    with pytest.raises(PayloadError):
        parse("[" * 100_000 + "]" * 100_000, [KEY])


def payload_with(**fields) -> Payload:
    body_json = json.dumps(BODY)
    return parse(envelope(body_json, sign(body_json, KEY), **fields), [KEY])


@pytest.mark.parametrize(("exception", "expected_exceptions"), [(True, 3), (False, 2)])
def test_released_keeps_signed_body_and_bumps_exceptions_only_when_asked(
    exception, expected_exceptions
):
    payload = payload_with(attempts=4, exceptions=2, lost=1, available_at=10)
    again = parse(payload.released(5_000, exception=exception), [KEY])
    assert (again.body_json, again.sig) == (payload.body_json, payload.sig)
    assert again.exceptions == expected_exceptions
    assert (again.attempts, again.lost, again.available_at) == (4, 1, 5_000)
    assert again.lease is None


def test_released_drops_the_lease():
    payload = parse(signed(lease="token-1"), [KEY])
    assert json.loads(payload.released(0, exception=False))["lease"] is None


def test_peek_reads_the_body_without_verifying_it():
    assert peek(tampered())["args"] == [2]
    assert peek(build(BODY, KEY, available_at=0).encode()) == BODY


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        b"\xff\xfe\x00",
        pickle.dumps(BODY),
        "null",
        "5",
        '"text"',
        "[1, 2]",
        "{}",
        '{"body": 5}',
        '{"body": null}',
        '{"body": "not json"}',
        '{"body": "[1, 2]"}',
        pytest.param("[" * 100_000 + "]" * 100_000, id="deeply-nested"),
    ],
)
def test_peek_never_raises(raw):
    assert peek(raw) == {}
