"""The signature check against what Chatwoot really sends (FACTS.md section 1)."""

import base64
import hashlib
import hmac
import time

import pytest

from botkit.config import ConfigError, load_settings
from botkit.security import Verifier, signed_headers

BODY = b'{"event":"message_created","id":1}'
NOW = 1_781_691_342


def verifier(**kwargs):
    kwargs.setdefault("clock", lambda: NOW)
    return Verifier([b"s3cret"], **kwargs)


def lower(headers):
    return {k.lower(): v for k, v in headers.items()}


def test_valid_signature():
    assert verifier().verify(lower(signed_headers("s3cret", BODY, timestamp=NOW)), BODY)


def test_signature_matches_chatwoots_formula():
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signed_headers("s3cret", BODY, timestamp=NOW)["X-Chatwoot-Signature"] == f"sha256={expected}"


def test_signature_over_the_body_alone_is_rejected():  # Chatwoot issue #13809
    wrong = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    headers = {"x-chatwoot-timestamp": str(NOW), "x-chatwoot-signature": f"sha256={wrong}"}
    assert not verifier().verify(headers, BODY)


@pytest.mark.parametrize("skew", [-301, 301, -10_000])
def test_stale_and_future_timestamps_are_rejected(skew):
    headers = lower(signed_headers("s3cret", BODY, timestamp=NOW + skew))
    assert not verifier().verify(headers, BODY)
    assert verifier(tolerance=20_000).verify(headers, BODY)


def test_tampered_body_and_wrong_secret_are_rejected():
    headers = lower(signed_headers("s3cret", BODY, timestamp=NOW))
    assert not verifier().verify(headers, BODY + b" ")
    assert not verifier().verify(lower(signed_headers("other", BODY, timestamp=NOW)), BODY)


def test_a_rotated_second_secret_is_accepted():
    both = Verifier([b"old", b"new"], clock=lambda: NOW)
    assert both.verify(lower(signed_headers("new", BODY, timestamp=NOW)), BODY)
    assert both.verify(lower(signed_headers("old", BODY, timestamp=NOW)), BODY)


@pytest.mark.parametrize("drop", ["x-chatwoot-timestamp", "x-chatwoot-signature"])
def test_missing_headers_are_rejected(drop):
    headers = lower(signed_headers("s3cret", BODY, timestamp=NOW))
    del headers[drop]
    assert not verifier().verify(headers, BODY)


@pytest.mark.parametrize("stamp", ["", "abc", "١٢٣", "-5", "1e9"])
def test_garbage_timestamps_are_rejected(stamp):
    headers = lower(signed_headers("s3cret", BODY, timestamp=NOW))
    headers["x-chatwoot-timestamp"] = stamp
    assert not verifier().verify(headers, BODY)


def test_unsigned_is_accepted_only_with_the_opt_in():
    assert not verifier().verify({}, BODY)
    assert verifier(allow_unsigned=True).verify({}, BODY)
    # the opt-in does not let a bad signature through
    assert not verifier(allow_unsigned=True).verify({"x-chatwoot-timestamp": str(NOW),
                                                     "x-chatwoot-signature": "sha256=00"}, BODY)


def test_basic_auth_credentials_from_the_outgoing_url():
    good = {"authorization": "Basic " + base64.b64encode(b"bot:pa55").decode()}
    bad = {"authorization": "Basic " + base64.b64encode(b"bot:nope").decode()}
    basic = Verifier([], basic_auth="bot:pa55")
    assert basic.verify(good, BODY)
    assert not basic.verify(bad, BODY)
    assert not basic.verify({}, BODY)
    assert not basic.verify({"authorization": "Basic \udcff"}, BODY)


def test_no_way_to_verify_stops_start_up_with_one_sentence():
    with pytest.raises(ConfigError) as caught:
        Verifier.from_settings(load_settings(env_file=None))
    message = str(caught.value)
    assert "CHATWOOT_WEBHOOK_SECRET" in message and message.count(". ") == 0


def test_settings_secret_list_feeds_the_verifier():
    settings = load_settings(env_file=None, chatwoot_webhook_secret="old, new")
    assert settings.webhook_secrets == [b"old", b"new"]
    now = time.time()
    assert Verifier.from_settings(settings).verify(lower(signed_headers("new", BODY, timestamp=int(now))), BODY)
