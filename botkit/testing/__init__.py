"""Testing kit for botkit bots: a fake Chatwoot (`botkit.testing.fake_chatwoot.FakeChatwoot`) and helpers."""
