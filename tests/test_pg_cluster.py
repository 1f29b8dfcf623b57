import psycopg


def test_cluster_has_pg_stat_statements_preloaded(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
        assert conn.execute("SHOW pg_stat_statements.track").fetchone() == ("all",)
        conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
