"""Tests for wsrig.load.resources.port_path: which path the report says the rig's bytes took."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wsrig.load import resources


def _procs(*cmdlines: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(info={"name": c[0], "cmdline": c}) for c in cmdlines]


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["dockerd", "--userland-proxy=false"], "kernel NAT"),
        (["dockerd"], "docker-proxy"),
        (["dockerd", "--userland-proxy=true"], "docker-proxy"),
    ],
)
def test_port_path_follows_dockerds_flag(monkeypatch, cmdline, expected) -> None:
    monkeypatch.setattr(resources.psutil, "process_iter", lambda attrs: _procs(["bash"], cmdline))
    monkeypatch.setattr(resources, "Path", lambda p: SimpleNamespace(read_text=lambda: "{}"))
    assert resources.port_path().startswith(expected)


def test_port_path_reads_daemon_json(monkeypatch) -> None:
    monkeypatch.setattr(resources.psutil, "process_iter", lambda attrs: _procs(["dockerd"]))
    monkeypatch.setattr(resources, "Path", lambda p: SimpleNamespace(read_text=lambda: '{"userland-proxy": false}'))
    assert resources.port_path().startswith("kernel NAT")


def test_port_path_without_local_dockerd(monkeypatch) -> None:
    monkeypatch.setattr(resources.psutil, "process_iter", lambda attrs: _procs(["bash"]))
    assert resources.port_path().startswith("unknown")
