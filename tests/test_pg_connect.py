"""querywatch.pg.connect: read-only, short timeouts, and one redacted line on every failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pg_cluster import free_port, running_cluster
from querywatch import pg
from querywatch.errors import DatabaseUnavailable

pytestmark = pytest.mark.postgres


def _with(
    dsn: str, *, user: str | None = None, password: str | None = None, db: str | None = None
) -> str:
    """``dsn`` (postgresql://postgres@host:port/db) with another user, password or database."""
    head, rest = dsn.split("://", 1)
    hostpart = rest.split("@", 1)[1]
    host, dbname = hostpart.rsplit("/", 1)
    cred = (user or "postgres") + (f":{password}" if password else "")
    return f"{head}://{cred}@{host}/{db or dbname}"


def _one_line(exc: pytest.ExceptionInfo[DatabaseUnavailable]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_session_is_read_only_with_short_timeouts(pg_dsn: str) -> None:
    with pg.connect(pg_dsn, statement_timeout_ms=1500) as conn:
        assert conn.autocommit
        show = {
            name: conn.execute(f"SHOW {name}").fetchone()
            for name in (
                "default_transaction_read_only",
                "statement_timeout",
                "lock_timeout",
                "application_name",
            )
        }
        assert show == {
            "default_transaction_read_only": ("on",),
            "statement_timeout": ("1500ms",),
            "lock_timeout": ("1s",),
            "application_name": ("querywatch",),
        }
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE nope (a int)")


def test_statement_timeout_cancels_a_slow_query(pg_dsn: str) -> None:
    with pg.connect(pg_dsn, statement_timeout_ms=100) as conn:
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(5)")
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the session survives


def test_read_write_only_when_asked(pg_dsn: str) -> None:
    with pg.connect(pg_dsn, read_only=False) as conn:
        conn.execute("CREATE TABLE allowed (a int)")
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("off",)


def test_connection_refused_is_one_redacted_line() -> None:
    dsn = f"postgresql://bob:s3cret-pw@127.0.0.1:{free_port()}/db"
    with pytest.raises(DatabaseUnavailable) as exc:
        pg.connect(dsn, connect_timeout_s=2)
    message = _one_line(exc)
    assert "s3cret-pw" not in message
    assert message.startswith("cannot connect to postgresql://bob:***@127.0.0.1:")
    assert "connection refused (is the server running" in message


def test_missing_database(pg_server: str) -> None:
    with pytest.raises(DatabaseUnavailable) as exc:
        pg.connect(_with(pg_server, password="hunter22", db="nope"))
    message = _one_line(exc)
    assert message.endswith('database "nope" does not exist')
    assert "hunter22" not in message and "postgres:***@" in message


def test_unknown_role(pg_server: str) -> None:
    with pytest.raises(DatabaseUnavailable) as exc:
        pg.connect(_with(pg_server, user="ghost"))
    assert _one_line(exc).endswith('role "ghost" does not exist')


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://bob:s3cret-pw@127.0.0.1:notaport/db", 'invalid integer value "notaport"'),
        ("host=127.0.0.1 password=s3cret-pw bogus=1", 'invalid connection option "bogus"'),
        ("postgresql//bob:s3cret-pw@x/db", 'missing "="'),
    ],
)
def test_malformed_dsn(dsn: str, expected: str) -> None:
    with pytest.raises(DatabaseUnavailable) as exc:
        pg.connect(dsn)
    message = _one_line(exc)
    assert "s3cret-pw" not in message
    assert expected in message


def test_reason_keeps_the_meaningful_line() -> None:
    multi = psycopg.OperationalError(
        'connection failed: connection to server at "10.0.0.2", port 5432 failed: Connection '
        "refused\n\tIs the server running on that host and accepting TCP/IP connections?\n"
        "Multiple connection attempts failed. All failures were:\n- host: '10.0.0.1'..."
    )
    assert pg.reason(multi) == (
        "connection refused (is the server running on that host and accepting TCP connections?)"
    )
    fatal = psycopg.OperationalError(
        'connection failed: connection to server on socket "/tmp/.s.PGSQL.5432" failed: '
        'FATAL:  password authentication failed for user "bob"\n'
    )
    assert pg.reason(fatal) == 'password authentication failed for user "bob"'


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[str]:
    """A private cluster where role qw_pw must authenticate with a password (scram)."""
    with running_cluster() as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE ROLE qw_pw LOGIN PASSWORD 'right-pw'")
            row = conn.execute("SHOW hba_file").fetchone()
            assert row is not None
            hba = Path(row[0])
            hba.write_text("host all qw_pw 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
        yield dsn


def test_password_authentication_failed(password_cluster: str) -> None:
    with pytest.raises(DatabaseUnavailable) as exc:
        pg.connect(_with(password_cluster, user="qw_pw", password="wrong-pw"))
    message = _one_line(exc)
    assert "wrong-pw" not in message and "qw_pw:***@" in message
    assert message.endswith('password authentication failed for user "qw_pw"')
    with pg.connect(_with(password_cluster, user="qw_pw", password="right-pw")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("qw_pw",)


def test_display_dsn_never_shows_a_password() -> None:
    assert pg.display_dsn("postgresql://u:pw123@h/db") == "postgresql://u:***@h/db"
    assert pg.display_dsn("host=h password='a b c' dbname=x") == "host=h password=*** dbname=x"
    assert "pw123" not in pg.display_dsn("postgresql//u:pw123@h/db")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an environment assignment, as printed by a deploy script or a failing command
        ("PGPASSWORD=hunter2 psql -h db", "PGPASSWORD=*** psql -h db"),
        ('export PGPASSWORD="hunter2 two"; psql', "export PGPASSWORD=***; psql"),
        # the client-certificate key's password, in key=value and URL-parameter form
        ("host=db sslpassword=hunter2 dbname=shop", "host=db sslpassword=*** dbname=shop"),
        (
            "postgresql://app@db/shop?sslpassword=hunter2&sslmode=verify-full",
            "postgresql://app@db/shop?sslpassword=***&sslmode=verify-full",
        ),
        # a URL password typed with unencoded spaces (or an "@")
        ("postgresql://app:hunter2 two@db/shop", "postgresql://app:***@db/shop"),
        ("postgresql://app:hunter2@x@db:5432/shop", "postgresql://app:***@db:5432/shop"),
        # SQL-style doubled quote inside a quoted password
        ("host=db password='hunter2''s' dbname=shop", "host=db password=*** dbname=shop"),
        ("host=db password='hunter2\\'s' dbname=shop", "host=db password=*** dbname=shop"),
        ("host=db password='hunter2 unterminated", "host=db password=***"),
    ],
)
def test_redact_hides_every_password_form(text: str, expected: str) -> None:
    from querywatch.dsn import redact

    assert redact(text) == expected
    assert "hunter2" not in redact(text)


def test_redact_leaves_text_without_passwords_alone() -> None:
    from querywatch.dsn import redact

    for text in (
        "postgresql://db:5432/shop",
        "postgresql://app@db/shop?sslmode=require&application_name=x",
        'password authentication failed for user "bob"',
        "mail ops@example.com about postgresql://db/shop",
    ):
        assert redact(text) == text


@pytest.mark.parametrize(
    ("dsn", "leak"),
    [
        # libpq quotes the part it cannot parse back: "unexpected spaces found in …"
        (f"postgresql://bob:top secret@127.0.0.1:{free_port()}/db", "top secret"),
        # … and 'missing "=" after …' with the tail of a doubled-quote password
        (f"host=127.0.0.1 port={free_port()} password='pw''tail-9' dbname=db", "tail-9"),
    ],
)
def test_malformed_dsn_error_never_quotes_the_password(dsn: str, leak: str) -> None:
    with pytest.raises(DatabaseUnavailable) as exc:
        pg.connect(dsn, connect_timeout_s=2)
    message = _one_line(exc)
    assert leak not in message, message
    assert message.startswith("cannot connect to the given DSN (malformed, not shown): ")
    assert '"***"' in message  # the reason is kept, the fragment masked
