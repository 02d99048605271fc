"""Throwaway PostgreSQL cluster for the test suite and the benchmarks.

Each :class:`PgCluster` runs its own ``initdb``-ed data directory in a fresh temporary
directory, listening only on 127.0.0.1 at a free port, so tests never depend on (or
disturb) a system-wide PostgreSQL and can run in parallel.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

__all__ = ["PgCluster", "find_pg_bin"]

_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 30
_PORT_ATTEMPTS = 5
_LOG_TAIL_LINES = 40
# Server log lines meaning "someone else grabbed the port between our probe and the bind".
_PORT_TAKEN = re.compile(
    r"could not bind IPv4 address|Address already in use|"
    r"could not create any TCP/IP sockets"
)

# Settings appended to postgresql.conf. fsync/synchronous_commit stay on on purpose: the
# benchmarks measure durable commits, so the throwaway cluster must not cheat on them.
_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "on",
    "synchronous_commit": "on",
    "max_connections": "300",
    "shared_buffers": "256MB",
    "logging_collector": "off",
}


def find_pg_bin() -> Path | None:
    """Directory holding initdb/pg_ctl.

    $EBANK_PG_BIN wins so CI can pin a version; otherwise the newest Debian
    /usr/lib/postgresql/<ver>/bin, then whatever ``initdb`` is on PATH.
    """
    env = os.environ.get("EBANK_PG_BIN")
    if env:
        return Path(env)

    def version_key(p: Path) -> tuple[int, ...]:
        ver = p.parent.name
        return tuple(int(x) for x in ver.split(".")) if re.fullmatch(r"\d+(\.\d+)*", ver) else ()

    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    if debian:
        return max(debian, key=version_key)

    found = shutil.which("initdb")
    if found is None:
        return None
    # /usr/local/bin/initdb may be a symlink farm without pg_ctl next to it; prefer the real dir.
    resolved = Path(found).resolve().parent
    return resolved if (resolved / "pg_ctl").is_file() else Path(found).parent


def _free_port() -> int:
    """Ask the kernel for an unused loopback port (may race; start() retries on that)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _conf_quote(value: str) -> str:
    """Quote a value for postgresql.conf (paths may contain spaces or quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class PgCluster:
    """A private PostgreSQL server living in a temp dir; use as a context manager.

    As root, the PostgreSQL binaries refuse to run, so they are run as the ``postgres``
    OS user and the cluster superuser is ``postgres``; otherwise the current user.
    Authentication is ``trust`` because the server only listens on loopback and a
    socket dir private to the cluster. As root, ``base_dir`` must be traversable by
    ``postgres`` (the default, the system temp dir, is).
    """

    def __init__(self, *, bin_dir: Path | None = None, base_dir: Path | None = None) -> None:
        self.bin_dir: Path | None = bin_dir if bin_dir is not None else find_pg_bin()
        self.base_dir = base_dir
        self.port: int = 0
        self.tmp_dir: Path | None = None
        self._pid: int | None = None
        self._owner_pid = os.getpid()
        self._atexit_hook: Callable[[], None] | None = None

        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a 'postgres' OS user") from None
            self._run_as: tuple[int, int] | None = (pw.pw_uid, pw.pw_gid)
            self.user = "postgres"
        else:
            self._run_as = None
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    # -- paths -------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The PGDATA directory (inside tmp_dir)."""
        return self._require_tmp() / "data"

    @property
    def log_file(self) -> Path:
        """Server log written by pg_ctl -l; its tail goes into startup errors."""
        return self._require_tmp() / "server.log"

    def _require_tmp(self) -> Path:
        if self.tmp_dir is None:
            raise RuntimeError("PgCluster is not started")
        return self.tmp_dir

    # -- process helpers -------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        if self.bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries found (set EBANK_PG_BIN)")
        exe = self.bin_dir / name
        if not exe.is_file():
            raise RuntimeError(f"{exe} not found (check EBANK_PG_BIN)")
        return str(exe)

    def _run(
        self, args: Sequence[str], *, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, dropping root privileges since the tools refuse root."""
        env = dict(os.environ, LC_ALL="C", LANG="C")
        for var in ("PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE"):
            env.pop(var, None)
        uid, gid = self._run_as if self._run_as is not None else (None, None)
        proc = subprocess.run(  # noqa: S603 - fixed binary paths, argv list, no shell
            list(args),
            cwd=self.tmp_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=uid,
            group=gid,
            extra_groups=None if uid is None else [],
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return proc

    def _log_tail(self, since: int = 0) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(since)
                text = fh.read().decode("utf-8", "replace")
        except (OSError, RuntimeError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> PgCluster:
        """initdb, start on a free loopback port and wait until it accepts connections."""
        if self.tmp_dir is not None:
            raise RuntimeError("PgCluster already started")
        # Register before doing anything so a half-started server is still cleaned up.
        self._owner_pid = os.getpid()
        self._atexit_hook = self._stop_at_exit
        atexit.register(self._atexit_hook)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        initdb, pg_ctl = self._bin("initdb"), self._bin("pg_ctl")
        if self.base_dir is not None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="ebank-pg-", dir=self.base_dir))
        if self._run_as is not None:
            # The dir is still empty, so chown of the dir itself is the "chown -R".
            os.chown(self.tmp_dir, *self._run_as)

        # --no-sync only skips the one-off flush of the freshly created template files
        # (a crash would discard the throwaway cluster anyway); runtime fsync stays on.
        self._run(
            [
                initdb,
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        settings = dict(_SERVER_SETTINGS, unix_socket_directories=str(self.tmp_dir))
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# ebank PgCluster\n")
            for key, value in settings.items():
                conf.write(f"{key} = {_conf_quote(value)}\n")

        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = _free_port()
            log_offset = self._log_size()
            proc = self._run(
                [
                    pg_ctl,
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(_READY_TIMEOUT)),
                    "-o",
                    f"-p {self.port}",
                ],
                timeout=_READY_TIMEOUT + 30,
                check=False,
            )
            if proc.returncode == 0:
                break
            tail = self._log_tail(log_offset)
            if _PORT_TAKEN.search(tail) and attempt < _PORT_ATTEMPTS:
                continue
            raise RuntimeError(
                f"PostgreSQL failed to start on port {self.port}:\n{proc.stdout}{proc.stderr}\n"
                f"--- server log tail ---\n{tail}"
            )
        self._pid = self._read_pid()
        self._wait_ready()

    def _read_pid(self) -> int | None:
        """Postmaster pid from our own postmaster.pid; the last-resort kill needs it."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, IndexError, ValueError):
            return None

    def _wait_ready(self) -> None:
        """pg_ctl -w already waited; confirm via a real client connection as tests will."""
        deadline = time.monotonic() + _READY_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self.connect():
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        raise RuntimeError(
            f"PostgreSQL on 127.0.0.1:{self.port} not accepting connections after "
            f"{_READY_TIMEOUT:.0f}s: {last}\n--- server log tail ---\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Fast shutdown, then delete the temp dir; idempotent and safe after a failed start."""
        if self._atexit_hook is not None:
            atexit.unregister(self._atexit_hook)
            self._atexit_hook = None
        tmp = self.tmp_dir
        if tmp is None:
            return
        try:
            self._shutdown_server()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self.tmp_dir = None
            self._pid = None

    def _shutdown_server(self) -> None:
        # pg_ctl stop only ever signals the pid recorded in *our* data dir's postmaster.pid.
        if self.bin_dir is not None and (self.data_dir / "postmaster.pid").exists():
            pg_ctl = str(self.bin_dir / "pg_ctl")
            for mode in ("fast", "immediate"):
                try:
                    proc = self._run(
                        [
                            pg_ctl,
                            "stop",
                            "-D",
                            str(self.data_dir),
                            "-m",
                            mode,
                            "-w",
                            "-t",
                            str(_STOP_TIMEOUT),
                        ],
                        timeout=_STOP_TIMEOUT + 10,
                        check=False,
                    )
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if proc.returncode == 0:
                    return
        self._kill_own_postmaster()

    def _kill_own_postmaster(self) -> None:
        """Last resort: SIGKILL our postmaster, but only if that pid still runs our data dir."""
        pid = self._pid
        if pid is None:
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return  # already gone
        if os.fsencode(str(self.data_dir)) not in cmdline:
            return  # pid reused by something else: not ours to kill
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)

    def _stop_at_exit(self) -> None:
        """atexit hook; a forked child must not tear down its parent's server."""
        if os.getpid() == self._owner_pid:
            self.stop()

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for a database in this cluster (psycopg 3 driver, trust auth)."""
        return (
            f"postgresql+psycopg://{quote(self.user, safe='')}@127.0.0.1:{self.port}/"
            f"{quote(dbname, safe='')}"
        )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[TupleRow]:
        """Autocommit admin connection (CREATE/DROP DATABASE cannot run in a transaction)."""
        self._require_tmp()
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """CREATE DATABASE, optionally cloned from ``template``; returns its URL.

        Cloning needs the template to have no other sessions: dispose engines on it first.
        """
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(stmt)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ... WITH (FORCE), so lingering pooled sessions don't block it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
