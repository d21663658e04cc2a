"""Files botkit creates that hold secrets, conversations or dead letters are readable by their owner only.

Each test runs under umask 022, the usual default, which would leave a new file world-readable (0644).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from botkit.store.sqlite import SQLiteStore, hold_server_lock
from tests.conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def botkit_init(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "botkit.cli", "init"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, umask=0o022)


def test_init_writes_a_new_env_file_for_its_owner_only(tmp_path: Path) -> None:
    assert botkit_init(tmp_path).returncode == 0
    env_file = tmp_path / ".env"
    assert "CHATWOOT_WEBHOOK_SECRET=" in env_file.read_text()
    assert mode(env_file) == 0o600


def test_init_keeps_the_mode_of_an_existing_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BOTKIT_PORT=8001")  # no trailing newline: init adds one before its line
    env_file.chmod(0o640)
    assert botkit_init(tmp_path).returncode == 0
    assert env_file.read_text().startswith("BOTKIT_PORT=8001\nCHATWOOT_WEBHOOK_SECRET=")
    assert mode(env_file) == 0o640


def test_init_says_when_the_secret_went_into_a_file_others_can_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BOTKIT_PORT=8001\n")
    env_file.chmod(0o644)
    result = botkit_init(tmp_path)
    assert result.returncode == 0
    assert result.stderr.splitlines()[-1] == ("botkit: .env is readable by other users; chmod 600 .env keeps its "
                                              "secret yours.")
    env_file.unlink()
    assert "readable by other users" not in botkit_init(tmp_path).stderr  # a new .env is its owner's alone


async def test_sqlite_store_its_wal_and_lock_files_are_private(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "botkit.db"
    server_lock = hold_server_lock(str(path))  # what `botkit serve` takes
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await store.recover()  # takes the worker lock file
        assert await store.enqueue(keys=["k"], lane="1:1", event="message_created", body=b"{}", delivery_id=None)
        [job] = await store.claim(1)
        await store.dead_letter(job, "failed for good")
        created = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.worker.lock"),
                   Path(f"{path}.server.lock")]
        assert all(p.exists() for p in created)
        assert {p.name: mode(p) for p in created} == {p.name: 0o600 for p in created}
    finally:
        await store.close()
        os.close(server_lock)


async def test_an_existing_store_file_keeps_its_mode(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "botkit.db"
    path.touch(mode=0o640)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.enqueue(keys=["k"], lane="1:1", event="message_created", body=b"{}", delivery_id=None)
        assert mode(path) == 0o640
    finally:
        await store.close()
