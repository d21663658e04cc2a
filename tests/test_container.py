"""The Dockerfile and the compose example of docs/deploy.md keep their promises.

The first tests read the files (a linter of what the image promises: non-root, the store on a volume, the
health check, `botkit serve`, the base image a build argument). The last one builds the image for real and
runs it, where a Docker engine answers and a base image made on this machine is named by
BOTKIT_TEST_DOCKER_BASE (`.ci/docker-engine` starts Debian's dockerd and imports a debootstrap root file
system, since no image registry is reachable from here).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
import yaml

from botkit.adapters.keywords import GUIDE_FALLBACK
from botkit.testing.fake_chatwoot import FakeChatwoot
from tests.conftest import ROOT, SECRET, free_port, message, signed

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile as (INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), " ".join(rest.split())))
    return pairs


def final_stage(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (word, _) in enumerate(pairs) if word == "FROM")
    return pairs[last_from:]


def test_dockerfile_takes_its_base_image_as_a_build_argument() -> None:
    pairs = instructions(DOCKERFILE.read_text())
    assert pairs[0][0] == "ARG" and pairs[0][1].startswith("BASE=")
    bases = [args.split()[0] for word, args in pairs if word == "FROM"]
    assert bases and all(base == "${BASE}" for base in bases)


def test_dockerfile_runs_botkit_serve_as_a_non_root_user_owning_the_store_volume() -> None:
    stage = final_stage(instructions(DOCKERFILE.read_text()))
    [user] = [args for word, args in stage if word == "USER"]
    assert user not in ("root", "0") and not user.startswith("0:")
    runs = " ".join(args for word, args in stage if word == "RUN")
    assert f"useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin {user}" in runs
    assert f"chown {user}:{user} /data" in runs and "chmod 0700 /data" in runs
    [volume] = [args for word, args in stage if word == "VOLUME"]
    assert json.loads(volume) == ["/data"]
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "BOTKIT_STORE=sqlite:////data/botkit.db" in env and "BOTKIT_HOST=0.0.0.0" in env
    [cmd] = [args for word, args in stage if word == "CMD"]
    assert json.loads(cmd) == ["botkit", "serve"]
    # USER comes after every RUN: nothing at run time is root
    assert max(i for i, (word, _) in enumerate(stage) if word == "RUN") < [w for w, _ in stage].index("USER")


def test_dockerfile_checks_health_on_healthz() -> None:
    stage = final_stage(instructions(DOCKERFILE.read_text()))
    [check] = [args for word, args in stage if word == "HEALTHCHECK"]
    options, _, command = check.partition("CMD ")
    assert "--timeout=3s" in options
    argv = json.loads(command)
    assert argv[:2] == ["python3", "-c"] and "/healthz" in argv[2] and "BOTKIT_PORT" in argv[2]


def test_dockerignore_keeps_secrets_and_the_store_out_of_the_build() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"  # everything is left out, then the few sources let back in
    assert {line for line in lines if line.startswith("!")} == {"!pyproject.toml", "!README.md", "!botkit/",
                                                                 "!bots/"}


def compose_example() -> dict:
    text = (ROOT / "docs" / "deploy.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "docker-compose.botkit.yaml" in b]
    return yaml.safe_load(block)


def test_compose_example_puts_botkit_on_chatwoots_network_with_its_store_on_a_volume() -> None:
    compose = compose_example()
    botkit = compose["services"]["botkit"]
    assert "networks" not in botkit  # the compose project's default network, which Chatwoot's services are on
    assert botkit["environment"]["CHATWOOT_BASE_URL"] == "http://rails:3000"  # Chatwoot's rails service
    assert botkit["env_file"] == "botkit.env"
    assert botkit["volumes"] == ["botkit_data:/data"] and "botkit_data" in compose["volumes"]
    assert "ports" not in botkit  # only Chatwoot, on the same network, reaches the bot
    assert botkit["stop_grace_period"] == "20s"  # above BOTKIT_SHUTDOWN_TIMEOUT's 10 s
    assert "BOTKIT_STORE" not in botkit["environment"]  # Redis is optional: SQLite on the volume by default


def test_deploy_doc_explains_safe_fetch_allow_private_network_for_the_compose_network() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text[text.index("## A container beside Chatwoot"):text.index("## Many replicas")]
    assert "SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true" in section and "sidekiq" in section
    assert "http://botkit:8000/webhook" in section


# The image, built and run --------------------------------------------------------------------------------


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {shlex.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def engine_and_base() -> str:
    base = os.environ.get("BOTKIT_TEST_DOCKER_BASE")
    if not base:
        pytest.skip("BOTKIT_TEST_DOCKER_BASE names no local base image (.ci/docker-engine makes one)")
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    if docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20).returncode != 0:
        pytest.skip("no Docker engine answers (DOCKER_HOST or /var/run/docker.sock)")
    return base


@pytest.fixture(scope="module")
def image() -> str:
    base = engine_and_base()
    tag = f"botkit-test:{uuid.uuid4().hex[:8]}"
    # host networking: the build's pip reaches the package index the way this machine does
    docker("build", "--network", "host", "--build-arg", f"BASE={base}", "-t", tag, str(ROOT), timeout=900)
    yield tag
    docker("rmi", "-f", tag, check=False)


async def test_the_image_serves_a_signed_delivery_and_its_reply_reaches_chatwoot(image: str) -> None:
    fake = FakeChatwoot()
    fake.add_conversation(conversation_id=1201, status="pending")
    async with fake.serve():
        port = free_port()
        name = f"botkit-test-{uuid.uuid4().hex[:8]}"
        volume = f"{name}-data"
        # host networking keeps every socket on 127.0.0.1: the container reaches the fake, the test the bot
        await asyncio.to_thread(
            docker, "run", "-d", "--name", name, "--network", "host", "-v", f"{volume}:/data",
            "--health-interval", "1s", "--health-start-period", "30s",
            "-e", f"BOTKIT_PORT={port}", "-e", f"CHATWOOT_BASE_URL={fake.url}",
            "-e", f"CHATWOOT_WEBHOOK_SECRET={SECRET}", "-e", f"CHATWOOT_BOT_TOKEN={fake.bot_token}",
            "-e", "BOTKIT_TEAMS=billing=3,technical=4", image)
        try:
            health = await wait_for_health(name)
            assert health == "healthy", await asyncio.to_thread(logs, name)
            raw, headers = signed(message(1201, 88_001, "hello there"), delivery_id="container-1")
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(f"http://127.0.0.1:{port}/webhook", content=raw, headers=headers)
            assert answer.status_code == 200, answer.text
            for _ in range(300):  # up to 30 s
                if fake.messages(1201):
                    break
                await asyncio.sleep(0.1)
            replies = [m["content"] for m in fake.messages(1201) if m["message_type"] == 1]  # 1: outgoing
            assert replies == [GUIDE_FALLBACK], await asyncio.to_thread(logs, name)

            who = await asyncio.to_thread(docker, "exec", name, "sh", "-c", "id -un; stat -c '%U %a' /data "
                                          "/data/botkit.db /data/botkit.db-wal")
            assert who.stdout.split("\n")[:4] == ["botkit", "botkit 700", "botkit 600", "botkit 600"]
            stopped = await asyncio.to_thread(docker, "stop", "-t", "20", name, timeout=40)
            assert stopped.returncode == 0
            state = json.loads((await asyncio.to_thread(docker, "inspect", name)).stdout)[0]["State"]
            assert state["ExitCode"] == 0  # SIGTERM: the worker drained and the server stopped cleanly
        finally:
            await asyncio.to_thread(docker, "rm", "-f", name, check=False)
            await asyncio.to_thread(docker, "volume", "rm", "-f", volume, check=False)


async def wait_for_health(name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    status = "starting"
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(docker, "inspect", "--format", "{{.State.Health.Status}}", name)
        status = result.stdout.strip()
        if status != "starting":
            return status
        await asyncio.sleep(0.5)
    return status


def logs(name: str) -> str:
    result = docker("logs", "--tail", "50", name, check=False)
    return result.stdout + result.stderr
