"""`botkit new NAME`: the scaffold is created, its entry point loads, and its own tests pass."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib

import pytest

from botkit.cli import main
from botkit.commands.errors import CommandError
from botkit.commands.scaffold import create, names_for


def test_new_creates_a_package_whose_tests_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "shop-bot"]) == 0
    assert "botkit chat shop_bot.bot" in capsys.readouterr().out
    project = tmp_path / "shop-bot"
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == ["README.md", "example.env", "pyproject.toml", "shop_bot/__init__.py", "shop_bot/bot.py",
                     "shop_bot/handlers.py", "tests/test_handlers.py"]
    assert "{{" not in "".join((project / f).read_text() for f in files)

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == ["botkit"]
    entry = pyproject["project"]["entry-points"]["botkit.handlers"]["shop_bot"]
    assert entry == "shop_bot.handlers:ShopBotHandler"
    env = (project / "example.env").read_text()
    assert "BOTKIT_BOT=shop_bot.bot:bot" in env and "SHOP_BOT_GREETING=" in env

    # the plugin entry point names a real Handler that builds from its settings
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setenv("SHOP_BOT_GREETING", "Howdy")
    module_name, _, attribute = entry.partition(":")
    try:
        from botkit.config import load_settings

        handler = getattr(importlib.import_module(module_name), attribute).from_settings(load_settings(None))
        assert handler.greeting == "Howdy" and handler.label == "shop_bot"
    finally:
        for name in [m for m in sys.modules if m == "shop_bot" or m.startswith("shop_bot.")]:
            del sys.modules[name]

    # its tests, run as its author would (with this venv's python and botkit's pytest plugin), pass
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BOTKIT_", "CHATWOOT_", "SHOP_BOT_"))}
    environment["PYTHONPATH"] = str(project)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_names_and_refusals(tmp_path):
    assert names_for("shop-bot") == {"name": "shop-bot", "package": "shop_bot", "class_name": "ShopBotHandler",
                                     "env_prefix": "SHOP_BOT"}
    for bad in ("1bot", "my bot", "../evil", "json", "class", "botkit"):
        with pytest.raises(CommandError):
            names_for(bad)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("mine")
    with pytest.raises(CommandError, match="already exists and is not empty"):
        create("taken", tmp_path)
    assert (tmp_path / "taken" / "file.txt").read_text() == "mine"
