"""Container hardening checks from docker inspect attributes (each rule fed a defect)."""

from __future__ import annotations

import copy

import pytest

from wsrig.hardening import hardening_problems, inspect_facts, summarize

GOOD = {
    "Config": {"User": "10001:10001"},
    "HostConfig": {
        "ReadonlyRootfs": True,
        "Privileged": False,
        "CapAdd": None,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
        "Tmpfs": {"/tmp": ""},
    },
    "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "28000"}]}},
    "Mounts": [{"Type": "volume", "Destination": "/data", "RW": True}],
}


def test_hardened_container_has_no_problem():
    """The compose file's settings pass."""
    assert hardening_problems(GOOD) == []
    assert summarize(GOOD)["published"] == ["127.0.0.1:28000->8000/tcp"]


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("Config", "User"), "", "root"),
        (("Config", "User"), "0:0", "root"),
        (("HostConfig", "ReadonlyRootfs"), False, "writable"),
        (("HostConfig", "Privileged"), True, "privileged"),
        (("HostConfig", "CapAdd"), ["NET_ADMIN"], "capabilities added"),
        (("HostConfig", "CapDrop"), [], "not all dropped"),
        (("HostConfig", "SecurityOpt"), [], "no-new-privileges"),
        (("NetworkSettings", "Ports"), {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}]}, "not loopback"),
        (("NetworkSettings", "Ports"), {"8000/tcp": [{"HostIp": "", "HostPort": "8000"}]}, "not loopback"),
        (("Mounts",), [{"Type": "bind", "Destination": "/app", "RW": True}], "writable mount /app"),
        (("HostConfig", "Tmpfs"), {"/var": ""}, "tmpfs /var"),
    ],
)
def test_each_weakness_is_reported(path, value, needle):
    """Root user, writable root, privileges, capabilities, wide ports and extra writable mounts are caught."""
    attrs = copy.deepcopy(GOOD)
    target = attrs
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problems = hardening_problems(attrs)
    assert any(needle in p for p in problems), problems
    assert hardening_problems(inspect_facts(attrs)) == problems  # what a history keeps judges the same


def test_inspect_facts_keep_what_the_rules_read_and_no_environment():
    """A history keeps only the fields the rules read: the inspect's environment (secrets) stays out."""
    attrs = {**copy.deepcopy(GOOD), "Config": {"User": "10001:10001", "Env": ["SYSTEM__AUTH_TOKEN=s3cret"]}}
    facts = inspect_facts(attrs)
    assert "s3cret" not in repr(facts)
    assert hardening_problems(facts) == [] and summarize(facts) == summarize(attrs)
