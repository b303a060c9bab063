"""The wire contract's Python binding: message classes, schema loading, validation.

The JSON Schemas in ``schemas/`` are the single source of truth; this module only
loads them and answers "is this frame valid, and if not, why". Both services and
the rig use it, so a change to the contract is a change to one folder.
"""

from __future__ import annotations

import json
import os
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

__all__ = [
    "CONTROL_TYPES",
    "CRITICAL_TYPES",
    "DATA_TYPES",
    "DELIVERY",
    "EXAMPLE_DATA",
    "EPHEMERAL_TYPES",
    "Invalid",
    "SCHEMA_BASE",
    "is_critical",
    "parse_frame",
    "schema_dir",
    "validate_control",
    "validate_envelope",
    "validate_summary",
]

SCHEMA_BASE = "https://wsrig.local/schemas/"


def _delivery_by_type() -> dict[str, str]:
    """Each data type's delivery class, from ``schemas/data/<type>.schema.json`` (its ``x-delivery``)."""
    out = {}
    for path in sorted((schema_dir() / "data").glob("*.schema.json")):
        schema = json.loads(path.read_text())
        out[schema["title"]] = schema["x-delivery"]
    return out


def _examples() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((schema_dir() / "data").glob("*.schema.json")):
        schema = json.loads(path.read_text())
        if schema.get("examples"):
            out[schema["title"]] = schema["examples"][0]
    return out


def _control_types() -> frozenset[str]:
    return frozenset(json.loads(p.read_text())["title"] for p in (schema_dir() / "control").glob("*.schema.json"))


def is_critical(msg_type: str) -> bool:
    return msg_type in CRITICAL_TYPES


class Invalid(Exception):
    """A frame that breaks the contract; ``code`` is the ``error`` frame's code.

    A plain exception, not a frozen dataclass: Python sets ``__traceback__`` on an
    exception as it passes through ``contextlib`` and generators, and a frozen one then
    raises ``FrozenInstanceError`` instead of itself (seen: a schema violation on the
    client stream crashed the message-flow probe with that error, hiding the defect).
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


# --- schema loading -----------------------------------------------------------


def schema_dir() -> Path:
    """``$WS_SCHEMA_DIR``, else ``schemas/`` found next to or above this package."""
    env = os.environ.get("WS_SCHEMA_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for base in (here, *here.parents):
        candidate = base / "schemas"
        if (candidate / "envelope.schema.json").is_file():
            return candidate
    raise FileNotFoundError("schemas/ not found: set WS_SCHEMA_DIR to the contract's schema folder")


#: The message types, read from the schemas (a new type is a new file in ``schemas/data/``).
#: ``critical``: never dropped; acked only once durable (``gap`` is critical so a loss
#: declaration can itself never be lost). ``ephemeral``: may be conflated or dropped under
#: overflow, but never silently.
DELIVERY = _delivery_by_type()
CRITICAL_TYPES = frozenset(t for t, d in DELIVERY.items() if d == "critical")
EPHEMERAL_TYPES = frozenset(t for t, d in DELIVERY.items() if d == "ephemeral")
DATA_TYPES = CRITICAL_TYPES | EPHEMERAL_TYPES
CONTROL_TYPES = _control_types()
#: A valid ``data`` of each type, its schema's first ``examples`` entry (``gap`` has none:
#: a sample gap would declare a loss).
EXAMPLE_DATA = _examples()


@lru_cache(maxsize=1)
def _registry() -> Registry:
    root = schema_dir()
    resources = []
    for path in sorted(root.rglob("*.schema.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = _registry().contents(SCHEMA_BASE + name)
    return Draft202012Validator(schema, registry=_registry())


def _first_error(name: str, obj: Any) -> str | None:
    return _first_error_of(_validator(name), obj)


def _first_error_of(validator: Draft202012Validator, obj: Any) -> str | None:
    error = next(iter(validator.iter_errors(obj)), None)
    if error is None:
        return None
    # Report the deepest, most specific error, with its JSON path.
    best = error
    while best.context:
        best = best.context[0]
    where = "/".join(str(p) for p in best.absolute_path) or "(root)"
    return f"{where}: {best.message}"[:1024]


# --- validation -----------------------------------------------------------------


def parse_frame(text: str | bytes) -> dict[str, Any]:
    """JSON text -> object, or ``Invalid`` with the reason."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid("invalid_json", f"not UTF-8: {exc.reason}") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise Invalid("invalid_json", str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise Invalid("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


@cache
def _envelope_split() -> tuple[Draft202012Validator, dict[str, str]] | None:
    """The envelope schema as (validator without its ``allOf``, type -> data schema name).

    ``envelope.schema.json`` is the envelope's own fields plus one ``if type == T then
    data: $ref data/T`` branch per type. Once the type is known, checking the fields and
    then ``data`` against ``data/T`` alone is the same verdict at a third of the cost
    (jsonschema otherwise evaluates all ten branches: ~215 vs ~70 us per message, which
    bounded the backend's ingest rate). Any other shape of ``allOf``: None, full schema.
    """
    schema = dict(_registry().contents(SCHEMA_BASE + "envelope.schema.json"))
    by_type: dict[str, str] = {}
    for branch in schema.pop("allOf", []):
        try:
            msg_type = branch["if"]["properties"]["type"]["const"]
            ref = branch["then"]["properties"]["data"]["$ref"]
        except (KeyError, TypeError):
            return None
        if set(branch) != {"if", "then"} or set(branch["then"]) != {"properties"} or msg_type in by_type:
            return None
        by_type[msg_type] = ref
    if set(by_type) != set(DATA_TYPES):
        return None
    return Draft202012Validator(schema, registry=_registry()), by_type


def validate_envelope(obj: dict[str, Any]) -> dict[str, Any]:
    """Check an event envelope and its ``data`` against the contract."""
    msg_type = obj.get("type")
    if not isinstance(msg_type, str) or msg_type not in DATA_TYPES:
        raise Invalid("unknown_type", f"unknown message type {msg_type!r}")
    split = _envelope_split()
    if split is None:
        problem = _first_error("envelope.schema.json", obj)
    else:
        problem = _first_error_of(split[0], obj)
        if problem is None:
            data_problem = _first_error(split[1][msg_type], obj.get("data"))
            problem = f"data/{data_problem}".replace("data/(root)", "data") if data_problem else None
    if problem:
        raise Invalid("schema_violation", f"{msg_type}: {problem}")
    return obj


def validate_control(obj: dict[str, Any]) -> dict[str, Any]:
    """Check a control frame (hello, welcome, ack, error, subscribe, snapshot)."""
    msg_type = obj.get("type")
    if not isinstance(msg_type, str) or msg_type not in CONTROL_TYPES:
        raise Invalid("unknown_type", f"unknown control frame {msg_type!r}")
    problem = _first_error(f"control/{msg_type}.schema.json", obj)
    if problem:
        raise Invalid("schema_violation", f"{msg_type}: {problem}")
    return obj


def validate_summary(obj: dict[str, Any]) -> list[str]:
    """All problems of a ``test_summary.json`` (empty when valid)."""
    validator = _validator("test_summary.schema.json")
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]
