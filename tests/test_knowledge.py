"""The knowledge base's core: reading files, passages, the SQLite index, keyword/dense search and the verdict,
embeddings (the real MiniLM model, and an OpenAI-compatible endpoint over a real socket), and `botkit kb`."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from botkit.cli import main
from botkit.config import ConfigError, load_settings
from botkit.knowledge import Document, DocumentError, KnowledgeBase, SQLiteIndex, read_path
from botkit.knowledge.documents import split
from botkit.knowledge.embeddings import MiniLM, OpenAIEmbeddings, embedder_from_settings
from botkit.knowledge.index import query_terms
from botkit.knowledge.retrieval import HANDOFF_DOCUMENT
from botkit.testing.fake_openai import FakeOpenAI
from tests.support.knowledge import FAQ, HTML, MARKDOWN, WordVectors, make_pdf


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "password.md").write_text(MARKDOWN)
    (folder / "sub" / "shipping.html").write_text(HTML)
    (folder / "refunds.pdf").write_bytes(make_pdf("Refund policy", ["Refunds reach your card within 14 days",
                                                                    "of the day we receive the parcel."]))
    (folder / "faq.csv").write_text(FAQ)
    (folder / "notes.bin").write_bytes(b"\x00\x01")  # not a kind botkit reads: skipped in a folder
    (folder / ".hidden.md").write_text("# Secret\n\nnot for the bot")
    return folder


# reading and splitting ------------------------------------------------------------------------------------

def test_a_folder_reads_markdown_html_pdf_and_faq_with_titles_links_and_languages(docs: Path) -> None:
    found = {d.title: d for d in read_path(docs, language="en")}
    assert set(found) == {"Resetting your password", "Shipping | Shop", "Refund policy", "Can I pay with PayPal?",
                          "How do I return an item?"}
    assert "var secret" not in found["Shipping | Shop"].text and "Home | Shop" not in found["Shipping | Shop"].text
    assert "## Abroad" in found["Shipping | Shop"].text and "Europe: 5 working days." in found["Shipping | Shop"].text
    assert "Refunds reach your card within 14 days" in found["Refund policy"].text
    assert found["Can I pay with PayPal?"].link == "https://shop.example.com/pay"
    assert found["Can I pay with PayPal?"].kind == "faq" and found["How do I return an item?"].link is None
    assert {d.language for d in found.values()} == {"en"}


def test_passages_follow_headings_and_keep_the_title_link_and_language() -> None:
    document = Document("d1", "Resetting your password", MARKDOWN, link="https://x/pw", language="en")
    passages = split(document)
    assert [p.title for p in passages] == ["Resetting your password", "Resetting your password › Changing it"]
    assert passages[1].text.startswith("Go to Settings")
    assert {(p.link, p.language) for p in passages} == {("https://x/pw", "en")}


def test_long_paragraphs_are_cut_at_sentences_within_the_word_budget() -> None:
    sentence = "This sentence has exactly eight words in it. "
    passages = split(Document("d", "T", sentence * 40), max_words=50)
    assert len(passages) > 5
    assert all(len(p.text.split()) <= 50 for p in passages)
    assert all(p.text.endswith("it.") for p in passages)  # never cut inside a sentence that fits


@pytest.mark.parametrize(("name", "content", "says"), [
    ("faq.csv", "q,a\nx,y\n", "question and answer columns"),
    ("faq.json", '{"question": "x"}', "JSON list"),
    ("faq.json", '[{"question": "x", "answer": ""}]', "entry 1: both a question and an answer"),
    ("bad.pdf", "not a pdf", "is not a PDF pypdf can read"),
    ("notes.docx", "x", "is not a kind botkit reads"),
])
def test_a_file_that_cannot_be_read_says_which_and_why(tmp_path: Path, name: str, content: str, says: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DocumentError, match=says):
        read_path(path)


def test_query_terms_drop_stopwords_but_keep_a_question_made_only_of_them() -> None:
    assert query_terms("How do I reset my password?") == ["reset", "password"]
    assert query_terms("who are you") == ["who", "are", "you"]
    assert query_terms('"quotes" AND NEAR(x)') == ["quotes", "near", "x"]


# keyword search and the verdict ---------------------------------------------------------------------------

def keyword_kb(docs: Path, path: str = ":memory:") -> KnowledgeBase:
    kb = KnowledgeBase(SQLiteIndex(path), None)
    kb.add(read_path(docs))
    return kb


def test_keyword_search_answers_with_the_best_passage_and_its_source(docs: Path) -> None:
    kb = keyword_kb(docs)
    found = kb.search("I forgot my password")
    assert found.verdict == "answer"
    assert found.best.passage.title == "Resetting your password"
    assert found.best.passage.extra["source"].endswith("password.md")
    assert kb.search("how long until my refund reaches my card").best.passage.title == "Refund policy"
    assert kb.search("europe delivery days").best.passage.title == "Shipping | Shop › Abroad"
    assert kb.search("paypal accepted?").best.passage.link == "https://shop.example.com/pay"


def test_a_question_the_documents_do_not_cover_is_unanswered(docs: Path) -> None:
    kb = keyword_kb(docs)
    assert kb.search("what is the capital of France").verdict == "unanswered"
    assert kb.search("password of my neighbour's wifi router firmware").verdict == "unanswered"
    assert kb.search("").verdict == "unanswered"


def test_a_request_for_a_person_or_a_complaint_gets_the_human_verdict(docs: Path) -> None:
    kb = keyword_kb(docs)
    assert kb.search("I want to talk to a human").verdict == "human"
    assert kb.search("I want to file a complaint").verdict == "human"
    assert kb.search("can I change my password").verdict == "answer"


def test_re_adding_skips_unchanged_documents_and_replaces_changed_ones(docs: Path) -> None:
    kb = keyword_kb(docs)
    again = kb.add(read_path(docs))
    assert again.added == [] and again.updated == [] and len(again.unchanged) == 5
    (docs / "password.md").write_text("# Resetting your password\n\nCall us on 0800 123 to reset it.")
    changed = kb.add(read_path(docs))
    assert changed.updated == [f"file:{(docs / 'password.md').resolve()}"]
    assert "0800" in kb.search("reset password").best.passage.text
    assert kb.index.stats()["passages"] == sum(len(split(d)) for d in read_path(docs)) + 16  # + the examples


def test_replace_source_removes_what_is_no_longer_there_and_remove_forgets_a_document() -> None:
    kb = KnowledgeBase(SQLiteIndex(":memory:"))
    a, b = Document("hc:1", "Alpha", "alpha text"), Document("hc:2", "Beta", "beta text")
    kb.replace_source("hc:", [a, b])
    changes = kb.replace_source("hc:", [a])
    assert changes.removed == ["hc:2"] and changes.unchanged == ["hc:1"]
    assert kb.search("beta").verdict == "unanswered"
    assert kb.remove("hc:1") and not kb.remove("hc:1")
    assert [d.id for d in kb.index.documents()] == [HANDOFF_DOCUMENT]


def test_the_index_lives_in_the_store_file_and_a_second_process_sees_changes(docs: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "botkit.db")
    writer = keyword_kb(docs, path)
    reader = KnowledgeBase(SQLiteIndex(path))
    assert reader.search("paypal").verdict == "answer"
    writer.remove(next(d.id for d in writer.index.documents() if d.title == "Can I pay with PayPal?"))
    assert reader.search("paypal").verdict == "unanswered"


def test_a_store_file_the_index_creates_is_private(tmp_path: Path) -> None:
    """`botkit kb add` may create the store's file before any server: owner-only, as the store makes it."""
    old = os.umask(0o022)
    try:
        SQLiteIndex(str(tmp_path / "botkit.db")).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "botkit.db").stat().st_mode) == 0o600


def test_gaps_are_kept_newest_first() -> None:
    kb = KnowledgeBase(SQLiteIndex(":memory:"))
    kb.record_gap("first question", "unanswered", 0.1, "1/7")
    kb.record_gap("second question", "human", None, "1/8")
    assert [(g.question, g.reason, g.conversation) for g in kb.index.gaps()] == [
        ("second question", "human", "1/8"), ("first question", "unanswered", "1/7")]
    assert kb.index.clear_gaps() == 2 and kb.index.gaps() == []


# dense search and fusion ----------------------------------------------------------------------------------

def test_dense_search_finds_what_keywords_miss_and_fusion_keeps_both() -> None:
    docs = [Document("a", "Delivery times", "Parcels arrive within three working days."),
            Document("b", "Payment methods", "We accept cards and bank transfers.")]
    embedder = WordVectors({"shipment": "parcel", "come": "arrive"})
    kb = KnowledgeBase(SQLiteIndex(":memory:"), embedder)
    kb.add(docs)
    keyword_only = KnowledgeBase(kb.index, None)
    assert keyword_only.search("when does my shipment come").verdict == "unanswered"
    found = kb.search("when does my shipment come")
    assert found.best.passage.title == "Delivery times" and found.best.bm25 is None and found.best.cosine > 0.3
    both = kb.search("payment cards")
    assert both.best.passage.title == "Payment methods" and both.best.bm25 is not None and both.best.cosine
    assert both.verdict == "answer"


def test_an_index_built_with_one_model_refuses_another_until_reindexed() -> None:
    index = SQLiteIndex(":memory:")
    KnowledgeBase(index, WordVectors()).add([Document("a", "A", "alpha")])
    with pytest.raises(ConfigError, match="indexed with embeddings 'words' but BOTKIT_KB_EMBEDDINGS is 'none'"):
        KnowledgeBase(index, None).add([Document("b", "B", "beta")])


def test_minilm_loads_from_the_installed_wheels_and_ranks_by_meaning() -> None:
    model = MiniLM()
    passages = model.embed(["To cancel an order, open My orders and choose Cancel.",
                            "Our shop is open from 9 to 5.", "Let me connect you with a member of our team."])
    assert passages.shape == (3, 384) and np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-4)
    cosines = passages @ model.embed(["how can I call off my purchase"], query=True)[0]
    assert int(np.argmax(cosines)) == 0 and cosines[0] > model.threshold > cosines[1]


async def test_openai_compatible_embeddings_over_a_real_socket() -> None:
    fake = FakeOpenAI(api_key="sk-test")
    async with fake.serve():
        embedder = OpenAIEmbeddings(model="text-embedding-3-small", base_url=fake.base_url, api_key="sk-test")
        kb = KnowledgeBase(SQLiteIndex(":memory:"), embedder)
        await asyncio.to_thread(kb.add, [Document("a", "Opening hours", "We open at nine in the morning.")])
        found = await asyncio.to_thread(kb.search, "opening hours")
    assert found.verdict == "answer" and found.best.cosine > 0.5
    assert kb.index.stats()["vectors"] == 17 and embedder.dimensions == 256  # with the 16 hand-off examples
    calls = [r for r in fake.requests if r.path == "/v1/embeddings"]
    assert calls and calls[-1].json["model"] == "text-embedding-3-small"
    assert calls[-1].headers["authorization"] == "Bearer sk-test"


def test_embeddings_settings_say_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="BOTKIT_KB_EMBEDDINGS must be|BOTKIT_KB_EMBEDDINGS input should be"):
        load_settings(env_file=None, botkit_kb_embeddings="bert")
    with pytest.raises(ConfigError, match="BOTKIT_KB_EMBEDDINGS=openai needs OPENAI_API_KEY"):
        embedder_from_settings(load_settings(env_file=None, botkit_kb_embeddings="openai"))
    assert embedder_from_settings(load_settings(env_file=None)) is None


# botkit kb ------------------------------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_STORE", f"sqlite:///{tmp_path / 'botkit.db'}")
    monkeypatch.delenv("BOTKIT_KB_EMBEDDINGS", raising=False)
    return tmp_path


def test_kb_add_list_search_remove_stats(cli_env: Path, docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "add", str(docs)]) == 0
    out = capsys.readouterr()
    assert "5 added, 0 updated" in out.err and f"added\tfile:{(docs / 'password.md').resolve()}" in out.out

    assert main(["kb", "search", "refund card days"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verdict: answer")
    assert "1. [article] Refund policy  (fused" in out and "bm25" in out and str(docs / "refunds.pdf") in out

    assert main(["kb", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 6 and any("\tfaq\t" in line and "https://shop.example.com/pay" in line for line in listed)

    assert main(["kb", "remove", str(docs / "faq.csv"), "nope"]) == 1
    out = capsys.readouterr()
    assert out.out.count("removed\t") == 2 and "no document has the id or source 'nope'" in out.err
    assert main(["kb", "stats"]) == 0
    stats = capsys.readouterr().out
    assert "documents\t4\tarticle=3 handoff=1" in stats and "vectors\t0\tnone" in stats


def test_kb_add_a_missing_path_or_an_empty_folder_says_so(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "add", str(cli_env / "missing")]) == 2
    assert "is neither a file nor a folder" in capsys.readouterr().err
    (cli_env / "empty").mkdir()
    assert main(["kb", "add", str(cli_env / "empty")]) == 2
    assert "no Markdown, text, HTML, PDF, CSV or JSON files in" in capsys.readouterr().err


def test_kb_add_handoff_examples_route_their_questions_to_a_person(cli_env: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (cli_env / "people.txt").write_text("my invoice is wrong and I am furious\nI need a lawyer to call me\n")
    (cli_env / "invoices.md").write_text("# Invoices\n\nYour invoice is in your account under Billing.")
    assert main(["kb", "add", "--handoff", str(cli_env / "people.txt")]) == 0
    assert main(["kb", "add", str(cli_env / "invoices.md")]) == 0
    capsys.readouterr()
    main(["kb", "search", "furious about a wrong invoice"])
    assert capsys.readouterr().out.startswith("verdict: human")
    main(["kb", "search", "where is my invoice"])
    assert capsys.readouterr().out.startswith("verdict: answer")


def test_kb_eval_measures_a_teams_own_questions(cli_env: Path, docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["kb", "add", str(docs)])
    (cli_env / "q.csv").write_text(
        "question,expected,human,hard\n"
        "I forgot my password,Resetting your password,,\n"
        "refund to my card,Refund policy,,yes\n"
        "do you take paypal,https://shop.example.com/pay,,\n"
        "what about the weather,Refund policy,,\n"
        "I want to speak to a person,,yes,\n")
    capsys.readouterr()
    assert main(["kb", "eval", str(cli_env / "q.csv")]) == 0
    figures = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert figures["questions"] == "4" and figures["recall@1"] == "0.750"
    assert figures["hard recall@1"] == "1.000" and figures["handoff recall"] == "1.000"
    (cli_env / "bad.csv").write_text("text\nhello\n")
    assert main(["kb", "eval", str(cli_env / "bad.csv")]) == 2
    assert "needs a header row with question and expected" in capsys.readouterr().err


def test_kb_gaps_lists_and_clears(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = KnowledgeBase(SQLiteIndex(str(cli_env / "botkit.db")))
    kb.record_gap("Do you ship to Mars?", "unanswered", 0.12, "1/42")
    assert main(["kb", "gaps"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith("\tunanswered\t0.120\t1/42\tDo you ship to Mars?")
    assert main(["kb", "gaps", "--clear"]) == 0 and "cleared 1 questions" in capsys.readouterr().err
    main(["kb", "gaps"])
    assert capsys.readouterr().out == ""


def test_kb_json_faq(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cli_env / "faq.json").write_text(json.dumps([{"question": "Do you ship abroad?",
                                                   "answer": "Yes, to 30 countries.", "language": "en"}]))
    assert main(["kb", "add", str(cli_env / "faq.json")]) == 0
    capsys.readouterr()
    main(["kb", "search", "ship abroad"])
    assert "1. [faq] Do you ship abroad?" in capsys.readouterr().out


def test_kb_search_on_an_empty_knowledge_base_says_what_to_do(cli_env: Path, capsys) -> None:
    # A new user's first `botkit kb search` printed only "verdict: unanswered", as if nothing matched.
    SQLiteIndex(str(cli_env / "botkit.db"))  # the store botkit serve made, with no documents yet
    assert main(["kb", "search", "how do I reset my password?"]) == 0
    assert "the knowledge base has no documents yet: add them with botkit kb add" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["search", "where is my parcel?"], ["gaps"], ["list"], ["stats"],
                                     ["remove", "file:a.md"], ["reindex"], ["eval", "q.csv"]])
def test_kb_reading_commands_where_there_is_no_store_say_so_and_make_none(cli_env: Path, capsys, command) -> None:
    # `botkit kb search` or `gaps` in another folder made an empty botkit.db there and answered from nothing.
    (cli_env / "q.csv").write_text("question,expected\nwhere is my parcel?,Shipping\n")
    assert main(["kb", *command]) == 2
    assert capsys.readouterr().err == (f"botkit: there is no store at {cli_env / 'botkit.db'}: run botkit kb where "
                                       "botkit serve runs, or name the store with BOTKIT_STORE (botkit kb add makes "
                                       "a new one).\n")
    assert not (cli_env / "botkit.db").exists()


@pytest.mark.parametrize("command", [["add", "missing.md"], ["add", "empty"], ["sync"]])
def test_a_kb_add_or_sync_that_fails_makes_no_store(cli_env: Path, capsys, command) -> None:
    # A new user's first `botkit kb add` of a mistyped path, or `kb sync` with no Chatwoot set, left an empty
    # botkit.db behind, and the reading commands then answered from it instead of saying there is no store.
    (cli_env / "empty").mkdir()
    assert main(["kb", *command]) == 2
    assert capsys.readouterr().err.startswith("botkit: ")
    assert not (cli_env / "botkit.db").exists()


def test_a_new_folders_first_kb_add_says_it_brings_botkits_handoff_examples(tmp_path: Path) -> None:
    """What a new user sees, through the real CLI with the default BOTKIT_STORE (./botkit.db)."""
    from tests.test_devtools import botkit

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "shipping.md").write_text("# Shipping\n\nParcels ship in 2 days.\n")
    searched = botkit("kb", "search", "when does my parcel ship?", cwd=tmp_path)
    assert searched.returncode == 2 and "there is no store at ./botkit.db" in searched.stderr
    assert not (tmp_path / "botkit.db").exists()
    first = botkit("kb", "add", "docs", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"added\tfile:{tmp_path / 'docs' / 'shipping.md'}\n"  # only what the user added
    assert first.stderr.splitlines() == [
        "1 added, 0 updated, 0 unchanged, 0 removed",
        "botkit: a new knowledge base starts with botkit:handoff, botkit's examples of questions for a person (they "
        "get the human verdict); botkit kb add --handoff FILE adds your own."]
    again = botkit("kb", "add", "docs", cwd=tmp_path)
    assert again.stdout == "" and again.stderr == "0 added, 0 updated, 1 unchanged, 0 removed\n"
    listed = botkit("kb", "list", cwd=tmp_path).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["botkit:handoff", f"file:{tmp_path / 'docs' / 'shipping.md'}"]
    assert "\t-\t" not in listed[0].split("Questions for a person")[0]  # it has a date, like every document
    assert botkit("kb", "search", "I want to talk to a human", cwd=tmp_path).stdout.startswith("verdict: human")


def test_kb_reindex_after_changing_the_embeddings(cli_env: Path, docs: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "add", str(docs)]) == 0
    monkeypatch.setenv("BOTKIT_KB_EMBEDDINGS", "minilm")
    capsys.readouterr()
    assert main(["kb", "search", "paypal"]) == 2
    assert "indexed with embeddings 'none' but BOTKIT_KB_EMBEDDINGS is 'minilm'" in capsys.readouterr().err
    assert main(["kb", "reindex"]) == 0
    assert "0 added, 6 updated" in capsys.readouterr().err
    main(["kb", "stats"])
    assert "\tminilm" in capsys.readouterr().out
    main(["kb", "search", "which ways can I pay"])
    out = capsys.readouterr().out
    assert out.startswith("verdict: answer") and "Can I pay with PayPal?" in out and "cosine" in out
