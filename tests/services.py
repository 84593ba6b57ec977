"""The services some tests need, started by the test run itself: a throwaway PostgreSQL cluster
and a headless Chromium.

Why here and not in a CI script: the README's one test command has to pass on a fresh machine
with nothing started by hand. The cluster lives in a temporary directory on a free loopback
port and is removed at the end of the session; a server named by SYNTHPIPE_TEST_PG_URL is used
instead when that variable is set. Missing binaries are installed with Debian's apt-get when the
tests run as root; otherwise the test fails with a message saying what to install (a skip would
let a green run hide untested code).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

ROLE, PASSWORD, DATABASE = "synthpipe", "synthpipe", "synthpipe_test"
_ADMIN = "synthpipe_admin"
T = TypeVar("T")


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(package: str, why: str) -> None:
    """Install a Debian package as root, or fail the test saying what is missing."""
    if not (_is_root() and shutil.which("apt-get")):
        pytest.fail(f"{why}: install the Debian package {package!r} (or run the tests as root, "
                    "which installs it with apt-get)", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"{why}, and `{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}", pytrace=False)


def postgres_bin_dir() -> Path | None:
    """The newest installed server's bin directory (Debian's layout first, then PATH)."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.name)) or (0,)

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(Path(candidate, tool).exists() for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    return None


def _installed(locate: Callable[[], T | None], package: str, why: str, still_missing: str) -> T:
    """What `locate` finds, after installing `package` with apt-get when it finds nothing; a test
    that needs a missing service fails (never skips) when even the install does not provide it."""
    found = locate()
    if found is None:
        _apt_install(package, why)
        found = locate()
        if found is None:
            pytest.fail(f"{package} was installed but {still_missing}", pytrace=False)
    return found


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel picks it), for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (or `nobody`)."""
    if not _is_root():
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root but neither user 'postgres' nor 'nobody' exists to run PostgreSQL",
                pytrace=False)


def _as(user: pwd.struct_passwd | None, cmd: list[str]) -> list[str]:
    if user is None:
        return cmd
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *cmd]


def _check(cmd: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
        pytest.fail(f"could not {what}: `{' '.join(cmd)}` exited {done.returncode}\n"
                    f"{done.stdout[-2000:]}{done.stderr[-2000:]}{tail}", pytrace=False)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a private cluster (initdb + pg_ctl) and yield its URL; stop and delete it after."""
    bin_dir = _installed(
        postgres_bin_dir, "postgresql", "the PostgreSQL tests need the server binaries (initdb, pg_ctl)",
        "initdb/pg_ctl are still not found",
    )
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="synthpipe-pg-"))
    data, log, pwfile = root / "data", root / "server.log", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    started = False
    try:
        _check(_as(user, [str(bin_dir / "initdb"), "-D", str(data), "-U", _ADMIN, f"--pwfile={pwfile}",
                          "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]),
               "create a PostgreSQL cluster")
        for attempt in range(3):  # the free port can be taken between choosing and binding it
            port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            done = subprocess.run(_as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                                             "-t", "120", "-o", options, "start"]),
                                  capture_output=True, text=True, cwd="/")
            if done.returncode == 0:
                started = True
                break
            if attempt == 2:
                pytest.fail(f"PostgreSQL did not start:\n{done.stderr[-2000:]}\n{log.read_text()[-3000:]}",
                            pytrace=False)
            time.sleep(0.5)
        _create_role_and_database(port)
        yield f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run(_as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           capture_output=True, cwd="/")
        shutil.rmtree(root, ignore_errors=True)


def _create_role_and_database(port: int) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(f"postgresql+psycopg2://{_ADMIN}:{PASSWORD}@127.0.0.1:{port}/postgres",
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"))
            conn.execute(sa.text(f"CREATE DATABASE {DATABASE} OWNER {ROLE}"))
    finally:
        admin.dispose()


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """A headless-capable Chromium on PATH, installed with apt-get (as root) when missing."""
    def located() -> str | None:
        return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)

    return _installed(
        located, "chromium", "the report test renders HTML in headless Chromium, which is not on PATH",
        "is still not on PATH",
    )
