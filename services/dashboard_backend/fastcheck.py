"""A quick yes for valid envelopes, compiled from the contract's schemas; no means "ask jsonschema".

``wscontract.validate_envelope`` costs ~100-200 us per envelope (jsonschema walks the
schema per instance). Under fan-out that was the backend's largest per-message cost
(py-spy: a quarter of the time the event loop held the GIL at 500 msg/s x 100
clients). ``EnvelopeCheck`` compiles the same schema files into plain Python
predicates once, and answers:

* True: the envelope is valid (the verdict jsonschema would give);
* False: it may be invalid, or uses something the compiler chose not to judge; the
  caller then runs ``validate_envelope``, whose verdict and error text are the ones
  sent. So a False never changes a verdict or a message, it only costs the slow path.

The compiler is sound by construction: it knows a fixed set of keywords (those the
contract uses), and for each it accepts only instances it can vouch for (stricter
than the standard where that is simpler: ``1.0`` is not an ``integer`` here, a bool
never equals a number, NaN is never within bounds). A schema with any other keyword
(``oneOf``, ``pattern``, ``format``, ...) compiles to None, and every envelope of that
type takes the slow path. ``tests/unit/test_backend_fastcheck.py`` checks the verdicts
against jsonschema's on valid, mutated and generated envelopes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

__all__ = ["EnvelopeCheck", "compile_schema"]

Check = Callable[[Any], bool]

#: Keywords that assert nothing (annotations and identifiers; ``x-delivery`` is the
#: contract's own: a data type's delivery class, read by wscontract).
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "x-delivery",
    }
)
_ENVELOPE = "envelope.schema.json"


class _Unsupported(Exception):
    """The schema uses something this compiler does not judge."""


def _type_check(name: str) -> Check:
    if name == "object":
        return lambda x: type(x) is dict
    if name == "array":
        return lambda x: type(x) is list
    if name == "string":
        return lambda x: type(x) is str
    if name == "integer":
        return lambda x: type(x) is int
    if name == "number":
        return lambda x: type(x) is int or type(x) is float
    if name == "boolean":
        return lambda x: type(x) is bool
    if name == "null":
        return lambda x: x is None
    raise _Unsupported(f"type {name!r}")


def _same(value: Any) -> Check:
    """Equal to a const/enum member, of the same JSON type (no 1 == 1.0 == True)."""
    if value is None:
        return lambda x: x is None
    kind = type(value)
    if kind not in (str, int, float, bool):
        raise _Unsupported(f"const/enum member {value!r}")
    if kind is float and not math.isfinite(value):
        raise _Unsupported("non-finite const")
    return lambda x: type(x) is kind and x == value


def _is_number(x: Any) -> bool:
    return type(x) is int or type(x) is float


def _bound(keyword: str, limit: Any) -> Check:
    if type(limit) not in (int, float):
        raise _Unsupported(f"{keyword} {limit!r}")
    # Non-numbers pass a bound (the keyword does not apply to them); bools are not
    # numbers. A NaN fails every comparison, so it is never vouched for.
    if keyword == "minimum":
        return lambda x: not _is_number(x) or x >= limit
    if keyword == "maximum":
        return lambda x: not _is_number(x) or x <= limit
    if keyword == "exclusiveMinimum":
        return lambda x: not _is_number(x) or x > limit
    return lambda x: not _is_number(x) or x < limit  # exclusiveMaximum


def _count(keyword: str, limit: Any) -> Check:
    if type(limit) is not int or limit < 0:
        raise _Unsupported(f"{keyword} {limit!r}")
    if keyword == "minLength":
        return lambda x: type(x) is not str or len(x) >= limit
    if keyword == "maxLength":
        return lambda x: type(x) is not str or len(x) <= limit
    if keyword == "minItems":
        return lambda x: type(x) is not list or len(x) >= limit
    return lambda x: type(x) is not list or len(x) <= limit  # maxItems


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    frozen = tuple(checks)

    def check(x: Any) -> bool:
        for c in frozen:  # noqa: SIM110  # a loop: all() over a generator costs a frame per call
            if not c(x):
                return False
        return True

    return check


def _object_check(props: dict[str, Check], required: tuple[str, ...], extra: Check | None) -> Check:
    """``properties`` + ``required`` + ``additionalProperties`` as one pass over a dict."""
    items = tuple(props.items())

    def check(x: Any) -> bool:
        if type(x) is not dict:
            return True  # none of the three applies to a non-object
        for key in required:
            if key not in x:
                return False
        for key, sub in items:
            if key in x and not sub(x[key]):
                return False
        if extra is not None:
            for key, value in x.items():
                if key not in props and not extra(value):
                    return False
        return True

    return check


def _array_check(prefix: tuple[Check, ...], items: Check | None) -> Check:
    n = len(prefix)

    def check(x: Any) -> bool:
        if type(x) is not list:
            return True
        for sub, value in zip(prefix, x, strict=False):
            if not sub(value):
                return False
        if items is not None:
            for value in x[n:]:
                if not items(value):
                    return False
        return True

    return check


class _Compiler:
    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.compiled: dict[str, Check] = {}
        self.compiling: set[str] = set()

    def ref(self, base: str, ref: str) -> Check:
        uri = urljoin(base, ref)
        if "#" in uri:
            raise _Unsupported(f"$ref with a fragment: {ref}")
        if uri in self.compiled:
            return self.compiled[uri]
        if uri in self.compiling:
            raise _Unsupported(f"recursive $ref {ref}")
        document = self.documents.get(uri)
        if document is None:
            raise _Unsupported(f"unknown $ref {ref}")
        self.compiling.add(uri)
        try:
            check = self.schema(document, uri)
        finally:
            self.compiling.discard(uri)
        self.compiled[uri] = check
        return check

    def schema(self, schema: Any, base: str) -> Check:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False  # nothing is valid (e.g. additionalProperties: false)
        if not isinstance(schema, dict):
            raise _Unsupported(f"schema {schema!r}")
        base = urljoin(base, schema["$id"]) if isinstance(schema.get("$id"), str) else base
        checks: list[Check] = []
        props: dict[str, Check] = {}
        required: tuple[str, ...] = ()
        extra: Check | None = None
        prefix: tuple[Check, ...] = ()
        items: Check | None = None
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            if keyword == "type":
                names = value if isinstance(value, list) else [value]
                kinds = [_type_check(n) for n in names]
                checks.insert(0, kinds[0] if len(kinds) == 1 else (lambda x, ks=tuple(kinds): any(k(x) for k in ks)))
            elif keyword == "const":
                checks.append(_same(value))
            elif keyword == "enum":
                if not isinstance(value, list) or not value:
                    raise _Unsupported("enum")
                if all(type(v) is str for v in value):
                    names = frozenset(value)
                    checks.append(lambda x, ns=names: type(x) is str and x in ns)
                else:
                    members = tuple(_same(v) for v in value)
                    checks.append(lambda x, ms=members: any(m(x) for m in ms))
            elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                checks.append(_bound(keyword, value))
            elif keyword in ("minLength", "maxLength", "minItems", "maxItems"):
                checks.append(_count(keyword, value))
            elif keyword == "properties":
                if not isinstance(value, dict):
                    raise _Unsupported("properties")
                props = {k: self.schema(v, base) for k, v in value.items()}
            elif keyword == "required":
                if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
                    raise _Unsupported("required")
                required = tuple(value)
            elif keyword == "additionalProperties":
                extra = self.schema(value, base) if value is not True else None
            elif keyword == "prefixItems":
                if not isinstance(value, list):
                    raise _Unsupported("prefixItems")
                prefix = tuple(self.schema(v, base) for v in value)
            elif keyword == "items":
                items = self.schema(value, base) if value is not True else None
            elif keyword == "$ref":
                if not isinstance(value, str):
                    raise _Unsupported("$ref")
                checks.append(self.ref(base, value))
            else:
                raise _Unsupported(keyword)
        if props or required or extra is not None:
            checks.append(_object_check(props, required, extra))
        if prefix or items is not None:
            checks.append(_array_check(prefix, items))
        return _all(checks)


def compile_schema(schema: Any, documents: dict[str, Any], base: str = "") -> Check | None:
    """A predicate that is True only for instances valid against ``schema``; None if unsupported.

    ``documents`` maps each schema's ``$id`` to its contents, for ``$ref``.
    """
    try:
        return _Compiler(documents).schema(schema, base)
    except _Unsupported:
        return None


def _split(envelope: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The envelope schema as (its own fields, type -> data schema ``$ref``), as wscontract splits it.

    Only the exact shape ``if {type: const T, required [type]} then {data: $ref}`` per type
    is understood (any other: None, no fast path at all).
    """
    fields = dict(envelope)
    by_type: dict[str, str] = {}
    for branch in fields.pop("allOf", []):
        try:
            cond, then = branch["if"], branch["then"]
            msg_type = cond["properties"]["type"]["const"]
            ref = then["properties"]["data"]["$ref"]
        except (KeyError, TypeError):
            return None
        if (
            set(branch) != {"if", "then"}
            or cond != {"properties": {"type": {"const": msg_type}}, "required": ["type"]}
            or then != {"properties": {"data": {"$ref": ref}}}
            or not isinstance(msg_type, str)
            or not isinstance(ref, str)
            or msg_type in by_type
        ):
            return None
        by_type[msg_type] = ref
    return fields, by_type


class EnvelopeCheck:
    """``check(obj)``: True only when ``obj`` is a valid envelope (see the module doc)."""

    def __init__(self, documents: dict[str, Any], base: str, types: frozenset[str]) -> None:
        """``types``: the envelope types the contract knows (others are never vouched for)."""
        self.by_type: dict[str, tuple[Check, Check]] = {}
        envelope = documents.get(urljoin(base, _ENVELOPE))
        split = _split(envelope) if isinstance(envelope, dict) else None
        if split is None:
            return
        fields, refs = split
        env_base = envelope.get("$id", base) if isinstance(envelope, dict) else base
        own = compile_schema(fields, documents, env_base)
        if own is None:
            return
        for msg_type, ref in refs.items():
            if msg_type not in types:
                continue
            compiler = _Compiler(documents)
            try:
                data = compiler.ref(env_base, ref)
            except _Unsupported:
                continue
            self.by_type[msg_type] = (own, data)

    @classmethod
    def from_dir(cls, root: Path, base: str, types: frozenset[str]) -> EnvelopeCheck:
        """From the contract's schema folder (every ``*.schema.json`` under ``root``)."""
        documents: dict[str, Any] = {}
        for path in sorted(root.rglob("*.schema.json")):
            contents = json.loads(path.read_text())
            if isinstance(contents, dict) and isinstance(contents.get("$id"), str):
                documents[contents["$id"]] = contents
        return cls(documents, base, types)

    def __call__(self, obj: dict[str, Any]) -> bool:
        msg_type = obj.get("type")
        if type(msg_type) is not str:
            return False
        pair = self.by_type.get(msg_type)
        if pair is None:
            return False
        own, data = pair
        return own(obj) and "data" in obj and data(obj["data"])
