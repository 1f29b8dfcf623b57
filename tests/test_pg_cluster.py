import psycopg

from pg_cluster import running_cluster


def test_cluster_has_pg_stat_statements_preloaded(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
        assert conn.execute("SHOW pg_stat_statements.track").fetchone() == ("all",)
        conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()


def test_a_cluster_can_keep_more_pg_stat_statements_entries() -> None:
    """Benches that track 10,000 fingerprints need more than the default 5,000 entries."""
    with (
        running_cluster({"pg_stat_statements.max": "12000"}) as dsn,
        psycopg.connect(dsn) as conn,
    ):
        assert conn.execute("SHOW pg_stat_statements.max").fetchone() == ("12000",)
        assert conn.execute("SHOW pg_stat_statements.track").fetchone() == ("all",)
