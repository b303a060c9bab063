"""Tests for dashboard_backend.config."""

from __future__ import annotations

import pytest
from dashboard_backend.config import Config


def test_defaults_and_overrides():
    """Unset variables keep defaults; set ones are parsed; origins split on commas."""
    cfg = Config.from_env({"SYSTEM__PORT": "9000", "SYSTEM__ALLOWED_ORIGINS": "http://a, http://b", "X": "y"})
    assert cfg.port == 9000 and cfg.host == "0.0.0.0"
    assert cfg.allowed_origins == ("http://a", "http://b")
    assert cfg.client_queue_size == 10_000 and cfg.group_commit_ms == 5


def test_token_is_masked():
    """The printable description never contains the token."""
    cfg = Config.from_env({"SYSTEM__WEBSOCKET_AUTH_TOKEN": "s3cret-value"})
    assert "s3cret-value" not in repr(cfg)
    assert "s3cret-value" not in str(cfg.describe())


def test_bad_number_is_an_error():
    """A non-numeric port is refused with the variable's name."""
    with pytest.raises(ValueError, match="SYSTEM__PORT"):
        Config.from_env({"SYSTEM__PORT": "eighty"})


def test_event_loop_choice():
    """uvloop by default; asyncio on request; anything else is refused with the name."""
    assert Config.from_env({}).event_loop == "uvloop"
    assert Config.from_env({"SYSTEM__EVENT_LOOP": "AsyncIO"}).event_loop == "asyncio"
    with pytest.raises(ValueError, match="SYSTEM__EVENT_LOOP"):
        Config.from_env({"SYSTEM__EVENT_LOOP": "trio"})


def test_client_flush_pacing():
    """Off by default (a flush every loop turn); milliseconds and a burst when set."""
    cfg = Config.from_env({})
    assert cfg.client_flush_ms == 0 and cfg.client_flush_burst == 10
    cfg = Config.from_env({"SYSTEM__CLIENT_FLUSH_MS": "2.5", "SYSTEM__CLIENT_FLUSH_BURST": "3"})
    assert cfg.client_flush_ms == 2.5 and cfg.client_flush_burst == 3
    with pytest.raises(ValueError, match="SYSTEM__CLIENT_FLUSH_BURST"):
        Config.from_env({"SYSTEM__CLIENT_FLUSH_BURST": "0"})
