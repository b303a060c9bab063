"""Tests of trading_bot.config: SYSTEM__* parsing and token masking."""

from __future__ import annotations

import pytest
from trading_bot.config import Config


def test_defaults():
    """With no environment the documented defaults apply."""
    c = Config.from_env({})
    assert c.enable_publishing is True
    assert c.dashboard_url == "ws://dashboard-backend:8000/ws"
    assert (c.max_retries, c.retry_delay, c.queue_size) == (10, 0.5, 1000)
    assert c.symbols == ("BTCUSD", "ETHUSD", "SOLUSD") and c.http_port == 8081


def test_env_overrides():
    """Every SYSTEM__ variable is read with its type."""
    c = Config.from_env(
        {
            "SYSTEM__ENABLE_WEBSOCKET_PUBLISHING": "false",
            "SYSTEM__WEBSOCKET_DASHBOARD_URL": "ws://x:1/ws",
            "SYSTEM__WEBSOCKET_AUTH_TOKEN": "s3cret-token",
            "SYSTEM__WEBSOCKET_MAX_RETRIES": "3",
            "SYSTEM__WEBSOCKET_RETRY_DELAY": "0.1",
            "SYSTEM__WEBSOCKET_QUEUE_SIZE": "50",
            "SYSTEM__TICK_INTERVAL": "0.05",
            "SYSTEM__SYMBOLS": " AAA, BBB ,",
            "SYSTEM__SEED": "7",
            "SYSTEM__HTTP_PORT": "9000",
            "SYSTEM__LOG_LEVEL": "debug",
        }
    )
    assert c.enable_publishing is False and c.dashboard_url == "ws://x:1/ws"
    assert (c.max_retries, c.retry_delay, c.queue_size, c.tick_interval) == (3, 0.1, 50, 0.05)
    assert c.symbols == ("AAA", "BBB") and c.seed == 7 and c.http_port == 9000
    assert c.log_level == "DEBUG"


def test_token_never_printed():
    """repr and masked() never contain the token."""
    c = Config.from_env({"SYSTEM__WEBSOCKET_AUTH_TOKEN": "s3cret-token"})
    assert "s3cret-token" not in repr(c)
    assert "s3cret-token" not in str(c.masked())


@pytest.mark.parametrize(
    "env",
    [
        {"SYSTEM__WEBSOCKET_QUEUE_SIZE": "0"},
        {"SYSTEM__WEBSOCKET_MAX_RETRIES": "many"},
        {"SYSTEM__ENABLE_WEBSOCKET_PUBLISHING": "maybe"},
        {"SYSTEM__HTTP_PORT": "70000"},
    ],
)
def test_bad_values_rejected(env):
    """Nonsense settings fail at start, naming the variable."""
    with pytest.raises(ValueError, match="SYSTEM__"):
        Config.from_env(env)
