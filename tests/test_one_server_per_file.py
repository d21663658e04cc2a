"""One `botkit serve` per SQLite file: a second server on a file a live one serves stops at start-up."""

from __future__ import annotations


def test_a_second_server_on_the_same_file_stops_with_one_sentence(tmp_path, botkit_process):
    store = f"sqlite:///{tmp_path}/botkit.db"
    first = botkit_process("serve", BOTKIT_STORE=store, BOTKIT_BOT="tests.support.recording_bot:bot",
                           RECORD_FILE=str(tmp_path / "first.jsonl")).ready()

    second = botkit_process("serve", BOTKIT_STORE=store, BOTKIT_BOT="bots.support_router:bot")
    assert second.process.wait(30) == 2, "the second server kept serving a file another server holds"
    said = second.log.read_text().strip().splitlines()
    assert said == [f"botkit: another botkit serve (pid {first.pid}) already serves {tmp_path}/botkit.db; stop it, "
                    "or give this server its own file in BOTKIT_STORE (several bots on one server: "
                    "BOTKIT_BOTS_FILE)."]

    first.kill()  # a killed server's lock goes with it: its restart is not refused
    botkit_process("serve", BOTKIT_STORE=store, BOTKIT_BOT="tests.support.recording_bot:bot",
                   RECORD_FILE=str(tmp_path / "first.jsonl")).ready()
