"""flows/io/secrets.py: the one masker, on URLs, DSNs, query strings and error messages, and the
places that used to have their own (flows/sql.py, provenance) now going through it."""

from __future__ import annotations

import pytest

from synthpipe.flows.io import mask_secrets, mask_url
from synthpipe.flows.io.secrets import reason
from synthpipe.flows.sql import mask_url as sql_mask_url


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://u:hunter2@h/db", "hunter2"),
        ("mysql+pymysql://root:p@ss/w0rd@db:3306/x", "p@ss/w0rd"),
        ("postgresql://u@h/db?sslmode=require&password=hunter2", "hunter2"),
        ("postgresql://u@h/db?sslpassword=hunter2", "hunter2"),
        ("https://h/api?access_token=abc123&x=1", "abc123"),
        ("host=h port=5432 user=u password=hunter2 dbname=d", "hunter2"),
        ("host=h password='two words' user=u", "two words"),
        ('{"password": "hunter2", "user": "u"}', "hunter2"),
        ("{'password': 'hunter2'}", "hunter2"),
        ("PGPASSWORD=hunter2 psql -h h", "hunter2"),
        ("api_key: hunter2", "hunter2"),
        (
            '(psycopg2.OperationalError) connection to server failed for "postgresql://u:hunter2@h:5432/db"',
            "hunter2",
        ),
    ],
)
def test_no_password_survives(text, secret):
    masked = mask_secrets(text)
    assert secret not in masked and "***" in masked
    assert sql_mask_url(text) == mask_url(text)  # one masker: sql.py re-exports it


def test_what_is_not_a_secret_is_kept():
    assert mask_secrets("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    assert mask_secrets("password authentication failed for user \"u\"") == (
        "password authentication failed for user \"u\""
    )
    assert mask_url("postgresql://u@h/db?sslmode=require") == "postgresql://u@h/db?sslmode=require"
    assert mask_url("postgres://u:pw@h/d") == "postgresql://u:***@h/d"


def test_known_secrets_are_scrubbed_wherever_they_appear(monkeypatch):
    assert mask_secrets("driver said: bad value s3cr%40t near s3cr@t", secrets=["s3cr%40t"]) == (
        "driver said: bad value *** near ***"
    )
    monkeypatch.setenv("PGPASSWORD", "fromtheenv")
    assert "fromtheenv" not in mask_secrets("FATAL: role fromtheenv does not exist")


def test_reason_masks_library_errors():
    class Driver(Exception):
        pass

    class Wrapped(Exception):
        orig = Driver("could not connect to postgresql://u:hunter2@h/db\nDETAIL: password=hunter2\n[SQL: SELECT 1]")

    text = reason(Wrapped("ignored"))
    assert "hunter2" not in text and "SQL: SELECT" not in text and "\n" not in text
    assert reason(ValueError("x" * 500)).endswith("...") and len(reason(ValueError("x" * 500))) == 300
