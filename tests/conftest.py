"""The PostgreSQL server of the `--storage postgresql://` tests: the one .ci/run started
(HPBENCH_PG_URL, HPBENCH_PG_DIR), else a throwaway one started here with .ci/postgres/."""
from __future__ import annotations

import glob
import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Postgres:
    """A running cluster: ``database()`` gives each test its own database; ``stop``/``start`` it."""

    def __init__(self, url: str, folder: str):
        self.url, self.folder = url, folder

    def database(self) -> str:
        import psycopg

        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        subprocess.run(["bash", ROOT / ".ci/postgres/stop-postgres.sh", self.folder], check=True)

    def start(self) -> None:
        subprocess.run(["bash", ROOT / ".ci/postgres/start-postgres.sh", self.folder], check=True,
                       stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def postgres():
    def unavailable(why):
        if os.environ.get("HPBENCH_REQUIRE_PG") == "1":
            pytest.fail(f"HPBENCH_REQUIRE_PG=1 but {why}")
        pytest.skip(why)

    url, folder, started = os.environ.get("HPBENCH_PG_URL"), os.environ.get("HPBENCH_PG_DIR"), False
    if not (url and folder):
        if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
            unavailable("no PostgreSQL server binaries (apt-get install postgresql-15)")
        folder = tempfile.mkdtemp(prefix="hpbench-pg-")
        out = subprocess.run(["bash", ROOT / ".ci/postgres/start-postgres.sh", folder], capture_output=True, text=True)
        if out.returncode:
            unavailable(f"start-postgres.sh failed: {out.stderr.strip()[-300:]}")
        url = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())["HPBENCH_PG_URL"]
        started = True
    yield Postgres(url, folder)
    if started:
        subprocess.run(["bash", ROOT / ".ci/postgres/stop-postgres.sh", folder], env={**os.environ, "PG_CLEAN": "1"})
