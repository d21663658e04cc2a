"""A bot for tests that run the server as a subprocess: it records each handled event in a file.

RECORD_FILE: where to append one JSON line per handled event; HANDLER_DELAY: seconds each event takes;
POISON: a message text that kills the process handling it (os._exit), as a crashing native library would.
Each line: message_id, conversation, delivery_id, started and ended (unix times of the handling), pid.
"""

import asyncio
import json
import os
import time


class RecordingBot:
    def __init__(self) -> None:
        self.path = os.environ.get("RECORD_FILE", "handled.jsonl")
        self.delay = float(os.environ.get("HANDLER_DELAY", "0"))

    async def handle(self, event, job) -> None:
        if os.environ.get("POISON") and event.raw.get("content") == os.environ["POISON"]:
            os._exit(70)
        started = time.time()
        await asyncio.sleep(self.delay)
        line = json.dumps({"message_id": event.raw.get("id"), "conversation": event.conversation_id,
                           "delivery_id": job.delivery_id, "started": started, "ended": time.time(),
                           "pid": os.getpid()})
        with open(self.path, "a") as handle:  # noqa: ASYNC230 - one small append; a killed process leaves whole lines
            handle.write(line + "\n")


bot = RecordingBot()


def read_records(path) -> list[dict]:
    """The records written so far; a line still being written (no newline yet) is left for the next read."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        text = handle.read()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]
