import dataclasses
import datetime as dt
import json
import sys
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import object_session

from core.serialization import ArgumentError, Decoder, ModelNotFoundError, encode
from tests.jobs import Customer, Point, use_database

UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def through_redis(value):
    """Encode, go through a JSON string the way a payload does, and decode."""
    decoder = Decoder()
    try:
        return decoder.decode(json.loads(json.dumps(encode(value))))
    finally:
        decoder.close()


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**63,
        1.5,
        "",
        "héllo",
        [],
        {},
        [1, "a", None, 2.5, True],
        {"a": {"b": [1, {"c": None}]}, "d": []},
        dt.datetime(2025, 3, 1, 12, 30, 45, 123456),
        dt.datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        dt.datetime(2025, 3, 1, 12, 30, tzinfo=IST),
        dt.date(2025, 3, 1),
        ID,
        Decimal("12.345"),
        Decimal("-0.000001"),
        Point(1, 2),
        {
            "when": dt.datetime(2025, 1, 1, tzinfo=UTC),
            "points": [Point(0, 0), Point(-1, 5)],
            "ids": [ID, {"day": dt.date(2024, 2, 29)}],
            "total": Decimal("9.99"),
        },
    ],
    ids=repr,
)
def test_value_round_trips_through_json(value):
    decoded = through_redis(value)
    assert decoded == value
    assert type(decoded) is type(value)


def test_naive_datetime_stays_naive():
    assert through_redis(dt.datetime(2025, 3, 1, 12, 30)).tzinfo is None


def test_aware_datetime_keeps_its_utc_offset():
    decoded = through_redis(dt.datetime(2025, 3, 1, 12, 30, tzinfo=IST))
    assert decoded.utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_datetime_is_not_confused_with_date():
    assert type(through_redis(dt.datetime(2025, 3, 1))) is dt.datetime
    assert type(through_redis(dt.date(2025, 3, 1))) is dt.date


def test_tuple_arrives_as_list():
    assert through_redis((1, (2, 3))) == [1, [2, 3]]


def test_nested_dataclass_values_are_decoded():
    decoded = through_redis(Point(x=dt.date(2025, 1, 1), y=ID))
    assert decoded == Point(x=dt.date(2025, 1, 1), y=ID)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC), {"$datetime": "2025-03-01T12:00:00+00:00"}),
        (dt.date(2025, 3, 1), {"$date": "2025-03-01"}),
        (ID, {"$uuid": str(ID)}),
        (Decimal("1.10"), {"$decimal": "1.10"}),
        (Point(1, 2), {"$dataclass": "tests.jobs:Point", "fields": {"x": 1, "y": 2}}),
    ],
)
def test_rich_values_travel_as_tagged_json(value, encoded):
    assert encode(value) == encoded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "cannot send a set"),
        (b"bytes", "cannot send a bytes"),
        (object(), "cannot send a object"),
        (1j, "cannot send a complex"),
        (Point, "cannot send a type"),
        ([1, {2}], "cannot send a set"),
        ({1: "a"}, "keys sent to a job must be strings, not 1"),
        ({("a",): 1}, "must be strings"),
        ({"$uuid": "x"}, "must not start with '\\$': '\\$uuid'"),
        ([{"ok": {"$nested": 1}}], "must not start with '\\$'"),
        (Point(1, {2}), "cannot send a set"),
    ],
    ids=repr,
)
def test_unsupported_values_raise_argument_error(value, message):
    with pytest.raises(ArgumentError, match=message):
        encode(value)


@pytest.mark.parametrize(
    "encoded",
    [
        {"$uuid": "not-a-uuid"},
        {"$datetime": "yesterday"},
        {"$datetime": 5},
        {"$date": "2025-13-01"},
        {"$pickle": "gASVCAAAAAAAAAB9lC4="},
        {"$dataclass": "tests.jobs:Point"},
        {"$dataclass": "tests.jobs:Point", "fields": {"x": 1}},
        {"$dataclass": "tests.jobs:Point", "fields": {"x": 1, "y": 2, "z": 3}},
        {"$dataclass": "tests.jobs:Customer", "fields": {}},
        {"$dataclass": "tests.jobs:Point.__init__", "fields": {}},
        {"$dataclass": "os:system", "fields": {}},
        {"$dataclass": "builtins:type", "fields": {}},
        {"$model": "tests.jobs:Point", "pk": 1},
        [1, {"$uuid": "bad"}],
    ],
    ids=repr,
)
def test_malformed_tagged_values_raise_argument_error(encoded):
    with pytest.raises(ArgumentError):
        Decoder().decode(encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        {"$uuid": 5},
        {"$dataclass": 5, "fields": {}},
        {"$dataclass": "tests.jobs:Point", "fields": [1, 2]},
        {"$model": 5, "pk": 1},
    ],
    ids=repr,
)
def test_malformed_tag_value_types_raise_argument_error(encoded):
    with pytest.raises(ArgumentError):
        Decoder().decode(encoded)


def test_malformed_decimal_raises_argument_error():
    with pytest.raises(ArgumentError):
        Decoder().decode({"$decimal": "abc"})


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("antigravity:Thing", "antigravity"),
        ("skyline_no_such_module:Job", "skyline_no_such_module"),
    ],
)
@pytest.mark.parametrize("tag", ["$dataclass", "$model"])
def test_decoding_never_imports_a_module_named_by_the_payload(path, module, tag):
    assert module not in sys.modules
    encoded = {tag: path, "fields": {}} if tag == "$dataclass" else {tag: path, "pk": 1}
    with pytest.raises(ArgumentError, match="not a loaded dataclass or model"):
        Decoder().decode(encoded)
    assert module not in sys.modules


@dataclasses.dataclass
class Tally:
    total: int
    seen: int = dataclasses.field(init=False, default=0)


def test_dataclass_with_init_false_field_round_trips():
    tally = Tally(3)
    tally.seen = 2
    assert through_redis(tally) == tally


@pytest.fixture
def sessions(engine, database_url):
    factory = use_database(database_url)
    with factory.begin() as session:
        session.execute(delete(Customer))
    return factory


def add_customer(sessions, name: str) -> Customer:
    with sessions.begin() as session:
        customer = Customer(name=name)
        session.add(customer)
    return customer


def test_model_travels_as_class_and_primary_key(sessions):
    customer = add_customer(sessions, "Ada")
    assert encode(customer) == {"$model": "tests.jobs:Customer", "pk": customer.id}
    assert json.loads(json.dumps(encode([customer]))) == [encode(customer)]


def test_model_is_reloaded_fresh_from_the_database(sessions):
    customer = add_customer(sessions, "Ada")
    encoded = json.loads(json.dumps(encode(customer)))
    with sessions.begin() as session:
        session.get(Customer, customer.id).name = "Grace"
    decoder = Decoder()
    loaded = decoder.decode(encoded)
    assert loaded is not customer
    assert (loaded.id, loaded.name) == (customer.id, "Grace")
    decoder.close()


def test_models_in_one_job_share_one_session(sessions):
    first, second = add_customer(sessions, "Ada"), add_customer(sessions, "Grace")
    decoder = Decoder()
    loaded = decoder.decode(encode({"a": first, "b": [second]}))
    assert (loaded["a"].name, loaded["b"][0].name) == ("Ada", "Grace")
    assert object_session(loaded["a"]) is object_session(loaded["b"][0]) is decoder.session
    decoder.close()
    assert decoder.session is None


def test_deleted_model_raises_model_not_found(sessions):
    customer = add_customer(sessions, "Ada")
    encoded = encode(customer)
    with sessions.begin() as session:
        session.execute(delete(Customer).where(Customer.id == customer.id))
    decoder = Decoder()
    with pytest.raises(ModelNotFoundError, match=f"Customer with primary key {customer.id}"):
        decoder.decode(encoded)
    decoder.close()


def test_unsaved_model_cannot_be_sent(sessions):
    with pytest.raises(ArgumentError, match="no primary key yet"):
        encode(Customer(name="not flushed"))
