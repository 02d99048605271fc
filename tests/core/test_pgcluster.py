"""End-to-end check of the throwaway PostgreSQL cluster used by tests and benchmarks."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from ebank.core.pgcluster import PgCluster, find_pg_bin

pytestmark = pytest.mark.skipif(
    find_pg_bin() is None,
    reason="PostgreSQL binaries not found (install postgresql or set EBANK_PG_BIN)",
)


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_lifecycle_databases_and_template() -> None:
    cluster = PgCluster().start()
    try:
        tmp_dir = cluster.tmp_dir
        port = cluster.port
        assert tmp_dir is not None and tmp_dir.is_dir()
        assert port > 0 and _accepts_connections(port)
        assert cluster.url().endswith(f"@127.0.0.1:{port}/postgres")

        url = cluster.create_database("ebank_tpl")
        assert url == cluster.url("ebank_tpl")
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)"))
                conn.execute(
                    sa.text("INSERT INTO t VALUES (:id, :name)"),
                    [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
                )
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, name FROM t ORDER BY id")).all()
                assert [tuple(r) for r in rows] == [(1, "one"), (2, "two")]
                assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "on"
                assert conn.execute(sa.text("SHOW max_connections")).scalar_one() == "300"
        finally:
            engine.dispose()  # a template must have no other sessions

        copy_url = cluster.create_database("ebank_copy", template="ebank_tpl")
        copy_engine = sa.create_engine(copy_url)
        try:
            with copy_engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 2
        finally:
            copy_engine.dispose()

        cluster.drop_database("ebank_copy")
        with sa.create_engine(cluster.url()).connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
        assert "ebank_copy" not in names
        assert "ebank_tpl" in names
    finally:
        cluster.stop()

    assert not tmp_dir.exists()
    assert not _accepts_connections(port)
    cluster.stop()  # idempotent


def test_stop_without_start_is_noop() -> None:
    PgCluster().stop()


def test_context_manager() -> None:
    with PgCluster() as cluster:
        tmp_dir = cluster.tmp_dir
        with sa.create_engine(cluster.url()).connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert tmp_dir is not None and not tmp_dir.exists()
