"""The CLI and `botkit serve`'s app work with the base install: an optional extra's packages are imported
only by the commands and handlers that need them (the container image installs no kb extra)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

WITHOUT_KB = textwrap.dedent("""
    import sys
    for name in ("numpy", "onnxruntime", "tokenizers", "pypdf", "selectolax"):
        sys.modules[name] = None  # as if the kb extra were not installed: importing them fails
    from botkit.cli import build_parser, main
    build_parser()
    import botkit.app, bots.support_router
    sys.exit(main(["kb", "list"]))
""")


def test_the_cli_and_the_app_need_no_kb_extra_and_kb_says_what_to_install(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_KB], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("botkit: botkit kb needs the kb extra: pip install 'botkit[kb]' (")
    assert "Traceback" not in result.stderr
