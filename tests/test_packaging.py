"""The package's metadata builds with the setuptools pyproject.toml asks for, and without a deprecation warning
(a `license` table printed one at every `pip install -e .`): `license` is an SPDX expression (PEP 639)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from email.parser import Parser

from tests.conftest import ROOT

# setuptools' PEP 517 hook, as pip's build runs it; the Makefile puts setuptools>=77 into the venv
PREPARE = "import sys, setuptools.build_meta as b; print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"


def test_the_metadata_builds_without_a_warning_and_says_the_licence(tmp_path):
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir(), out.mkdir()
    for name in ("pyproject.toml", "README.md"):  # a copy: the build writes its egg-info beside pyproject.toml
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-c", PREPARE, str(out)], cwd=source, capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr
    assert "Warning" not in built.stderr, built.stderr
    metadata = Parser().parsestr((out / built.stdout.splitlines()[-1] / "METADATA").read_text())  # the hook's answer
    assert metadata["License-Expression"] == "MIT" and metadata["License"] is None
