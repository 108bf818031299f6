"""Validation of Bot API requests against the machine-readable spec (``spec/api.min.json``).

The spec lists, for every method, its fields with their declared types ("Integer", "String",
"Boolean", "Float", "InputFile", "Array of X", "Array of Array of X", an object type, or a union
of several) and whether they are required; for every object type, its fields the same way, and
for abstract types (BotCommandScope, MenuButton, ChatMember, …) their concrete subtypes.

Why coerce instead of only checking: clients send the same call in several encodings. aiogram
posts multipart form data where every value is a string and objects, arrays and booleans are
JSON-encoded; others post a JSON body with native types; some use the query string. Telegram
accepts all of them and so must we, so each value is converted to the type the spec declares
and rejected only when it cannot be (a non-numeric Integer, garbled JSON for an object, a
missing required field, a nested object of the wrong shape).

Deliberate differences from Telegram, in the direction of catching bugs:

- a Boolean must be ``true``/``false``/``1``/``0`` (Telegram silently reads anything else as
  false);
- error descriptions name the field path, e.g. ``Bad Request: can't parse reply keyboard markup
  JSON object: field "reply_markup.inline_keyboard[0][0].text" is required``.

As on Telegram, an empty top-level value counts as absent and unknown parameters are ignored
(they are dropped from the validated parameters; unknown keys inside objects are dropped too).

:meth:`Spec.conformance_problems` runs the other way: it checks an object the emulator produced
(a Message, a ChatMember, …) against the spec strictly, so tests can prove our answers have the
shape aiogram's models expect.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.emulator.errors import ApiError, bad_request

SPEC_PATH = Path(__file__).with_name("spec") / "api.min.json"

_PRIMITIVES = frozenset({"Integer", "Float", "String", "Boolean", "InputFile", "True"})
_ARRAY = "Array of "
_INT_RE = re.compile(r"^[+-]?\d+$")
_CONSTANT_RE = re.compile(r'(?:always "([^"]+)"|must be ([a-z_]+))')

#: Descriptions Telegram uses for a few missing top-level parameters.
_MISSING = {
    "chat_id": "chat_id is empty",
    "text": "message text is empty",
}


@dataclass(frozen=True)
class Upload:
    """A file uploaded as a part of a multipart/form-data request."""

    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    types: tuple[str, ...]
    required: bool
    description: str


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    returns: tuple[str, ...]


@dataclass(frozen=True)
class TypeSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    subtypes: tuple[str, ...]
    #: For a concrete subtype: the field naming it and its value, e.g. ("type", "chat").
    constant: tuple[str, str] | None


class ValidationError(Exception):
    """A value that does not fit its declared type; ``path`` locates it, ``problem`` says why."""

    def __init__(self, path: str, problem: str, *, missing: bool = False) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path
        self.problem = problem
        # A missing required field is the weakest evidence against a union candidate:
        # the value is probably meant to be a different member of the union.
        self.rank = path.count(".") + path.count("[") - (0.5 if missing else 0.0)


def _article(type_name: str) -> str:
    return "an" if type_name[:1] in "AEIOU" else "a"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, Upload) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Spec:
    """The Bot API as the spec file describes it, with request coercion and validation."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.version: str = raw.get("version", "")
        self.methods: dict[str, MethodSpec] = {
            name: MethodSpec(
                name=name,
                fields=tuple(_field(f) for f in body.get("fields", [])),
                returns=tuple(body.get("returns", [])),
            )
            for name, body in raw["methods"].items()
        }
        self.types: dict[str, TypeSpec] = {}
        for name, body in raw["types"].items():
            fields = tuple(_field(f) for f in body.get("fields", []))
            self.types[name] = TypeSpec(
                name=name,
                fields=fields,
                subtypes=tuple(body.get("subtypes", [])),
                constant=_constant_of(body) if body.get("subtype_of") else None,
            )
        self._lower = {name.lower(): name for name in self.methods}

    @classmethod
    def load(cls, path: Path | str | None = None) -> Spec:
        """The spec from ``path``, or the copy shipped in this package (parsed once)."""
        if path is None:
            return _default_spec()
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def method(self, name: str) -> MethodSpec | None:
        """The method called ``name``; like Telegram, method names are case-insensitive."""
        canonical = self._lower.get(name.lower())
        return self.methods[canonical] if canonical else None

    # -- requests -----------------------------------------------------------------------------

    def validate_call(
        self,
        method: MethodSpec,
        params: Mapping[str, Any],
        uploads: Mapping[str, Upload] | None = None,
    ) -> dict[str, Any]:
        """Coerce ``params`` to the declared types; raise a 400 :class:`ApiError` if they don't fit.

        ``uploads`` are the file parts of a multipart request by part name, for ``attach://``.
        """
        uploads = uploads or {}
        out: dict[str, Any] = {}
        for field in method.fields:
            raw = params.get(field.name)
            if raw is None or (isinstance(raw, str) and raw == ""):
                if field.required:
                    detail = _MISSING.get(field.name, f'parameter "{field.name}" is required')
                    raise bad_request(detail)
                continue
            try:
                out[field.name] = self._coerce(field.types, raw, field.name, uploads)
            except ValidationError as exc:
                raise _describe(field, exc) from None
        return out

    def _coerce(
        self, types: Sequence[str], value: Any, path: str, uploads: Mapping[str, Upload]
    ) -> Any:
        if len(types) == 1:
            return self._coerce_one(types[0], value, path, uploads)
        if "InputFile" in types and isinstance(value, str) and value.startswith("attach://"):
            return self._coerce_one("InputFile", value, path, uploads)
        best: ValidationError | None = None
        for type_expr in types:
            try:
                return self._coerce_one(type_expr, value, path, uploads)
            except ValidationError as exc:
                if best is None or exc.rank > best.rank:
                    best = exc
        assert best is not None
        if best.rank < 1 and all(not _is_structured(t) for t in types):
            raise ValidationError(path, f"must be one of {', '.join(types)}, got {_show(value)}")
        raise best

    def _coerce_one(
        self, type_expr: str, value: Any, path: str, uploads: Mapping[str, Upload]
    ) -> Any:
        if type_expr.startswith(_ARRAY):
            items = _parse_json(value, list, path) if _decodes(value, path) else value
            if not isinstance(items, list):
                raise ValidationError(path, f"must be an Array, got {_show(value)}")
            inner = (type_expr[len(_ARRAY) :],)
            return [self._coerce(inner, v, f"{path}[{i}]", uploads) for i, v in enumerate(items)]
        if type_expr in _PRIMITIVES:
            return _coerce_primitive(type_expr, value, path, uploads)
        spec = self.types.get(type_expr)
        if spec is None:
            raise ValidationError(path, f"has a type unknown to the spec: {type_expr}")
        obj = _parse_json(value, dict, path) if _decodes(value, path) else value
        if not isinstance(obj, dict):
            raise ValidationError(path, f"must be an Object ({type_expr}), got {_show(value)}")
        if spec.subtypes and not spec.fields:
            return self._coerce_abstract(spec, obj, path, uploads)
        return self._coerce_object(spec, obj, path, uploads)

    def _coerce_abstract(
        self, spec: TypeSpec, obj: dict[str, Any], path: str, uploads: Mapping[str, Upload]
    ) -> Any:
        candidates = list(spec.subtypes)
        keyed = [self.types[s] for s in candidates if s in self.types and self.types[s].constant]
        if keyed and len(keyed) == len(candidates):
            key = keyed[0].constant[0]  # type: ignore[index]
            allowed = [t.constant[1] for t in keyed]  # type: ignore[index]
            if key not in obj:
                raise ValidationError(f"{path}.{key}", "is required", missing=True)
            candidates = [t.name for t in keyed if t.constant[1] == obj[key]]  # type: ignore[index]
            if not candidates:
                raise ValidationError(
                    f"{path}.{key}",
                    f"must be one of {', '.join(repr(a) for a in allowed)}, got {_show(obj[key])}",
                )
        return self._coerce(candidates, obj, path, uploads)

    def _coerce_object(
        self, spec: TypeSpec, obj: dict[str, Any], path: str, uploads: Mapping[str, Upload]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in spec.fields:
            sub = f"{path}.{field.name}"
            raw = obj.get(field.name)
            if raw is None:
                if field.required:
                    raise ValidationError(sub, "is required", missing=True)
                continue
            if spec.constant and field.name == spec.constant[0] and raw != spec.constant[1]:
                raise ValidationError(sub, f'must be "{spec.constant[1]}", got {_show(raw)}')
            out[field.name] = self._coerce(field.types, raw, sub, uploads)
        return out

    # -- responses ----------------------------------------------------------------------------

    def conformance_problems(
        self,
        type_expr: str,
        value: Any,
        *,
        path: str = "result",
        allow: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Strictly check an object we produced against ``type_expr``; list what does not fit.

        ``allow`` names fields that may appear though this spec does not list them (fields
        newer than the shipped spec that aiogram already requires).
        """
        return self._conform((type_expr,), value, path, allow)

    def _conform(
        self, types: Sequence[str], value: Any, path: str, allow: frozenset[str]
    ) -> list[str]:
        first: list[str] | None = None
        for type_expr in types:
            problems = self._conform_one(type_expr, value, path, allow)
            if not problems:
                return []
            first = first if first is not None else problems
        return first or []

    def _conform_one(
        self, type_expr: str, value: Any, path: str, allow: frozenset[str]
    ) -> list[str]:
        if type_expr.startswith(_ARRAY):
            if not isinstance(value, list):
                return [f"{path} must be an Array"]
            inner = (type_expr[len(_ARRAY) :],)
            return [
                p
                for i, v in enumerate(value)
                for p in self._conform(inner, v, f"{path}[{i}]", allow)
            ]
        strict = {
            "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "String": lambda v: isinstance(v, str),
            "Boolean": lambda v: isinstance(v, bool),
            "True": lambda v: v is True,
        }
        if type_expr in strict:
            return [] if strict[type_expr](value) else [f"{path} must be {type_expr}"]
        spec = self.types.get(type_expr)
        if spec is None:
            return [f"{path} has unknown type {type_expr}"]
        if not isinstance(value, dict):
            return [f"{path} must be an Object ({type_expr})"]
        if spec.subtypes and not spec.fields:
            return self._conform(spec.subtypes, value, path, allow)
        problems: list[str] = []
        known = {f.name for f in spec.fields}
        problems += [
            f"{path}.{k} is not a field of {type_expr}" for k in value if k not in known | allow
        ]
        for field in spec.fields:
            if field.name not in value:
                if field.required:
                    problems.append(f"{path}.{field.name} is required")
                continue
            problems += self._conform(field.types, value[field.name], f"{path}.{field.name}", allow)
        if spec.constant and value.get(spec.constant[0]) != spec.constant[1]:
            problems.append(f"{path}.{spec.constant[0]} must be {spec.constant[1]!r}")
        return problems


@functools.cache
def _default_spec() -> Spec:
    return Spec(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def _field(raw: Mapping[str, Any]) -> FieldSpec:
    return FieldSpec(
        name=raw["name"],
        types=tuple(raw["types"]),
        required=bool(raw.get("required")),
        description=raw.get("description", ""),
    )


def _constant_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """The discriminating field of a subtype: ``type`` "always "chat"" → ("type", "chat")."""
    for field in body.get("fields", []):
        if field["name"] in ("type", "status", "source") and field["types"] == ["String"]:
            match = _CONSTANT_RE.search(field.get("description", ""))
            if match:
                return field["name"], match.group(1) or match.group(2)
    return None


def _decodes(value: Any, path: str) -> bool:
    """Whether ``value`` is a JSON-encoded top-level parameter (as form data sends them).

    Only top-level parameters arrive JSON-encoded; inside a decoded object a string where an
    object or array belongs is simply the wrong type.
    """
    return isinstance(value, str) and "." not in path and "[" not in path


def _is_structured(type_expr: str) -> bool:
    return type_expr.startswith(_ARRAY) or type_expr not in _PRIMITIVES


def _parse_json(value: str, expected: type, path: str) -> Any:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValidationError(path, f"is not valid JSON: {_show(value)}") from None
    if not isinstance(parsed, expected):
        kind = "an Array" if expected is list else "an Object"
        raise ValidationError(path, f"must be {kind}, got {_show(parsed)}")
    return parsed


def _coerce_primitive(type_name: str, value: Any, path: str, uploads: Mapping[str, Upload]) -> Any:
    wrong = ValidationError(path, f"must be {_article(type_name)} {type_name}, got {_show(value)}")
    if type_name == "Integer":
        if isinstance(value, bool):
            raise wrong
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        raise wrong
    if type_name == "Float":
        if isinstance(value, bool):
            raise wrong
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise wrong from None
        raise wrong
    if type_name == "String":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise wrong
    if type_name in ("Boolean", "True"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise wrong
    # InputFile: an uploaded part, or attach://<part name> pointing at one.
    if isinstance(value, Upload):
        return value
    if isinstance(value, str) and value.startswith("attach://"):
        name = value[len("attach://") :]
        if name in uploads:
            return uploads[name]
        raise ValidationError(path, f'refers to a missing multipart part "{name}"')
    raise ValidationError(
        path, "must be a file uploaded as multipart/form-data (or attach://<part name>)"
    )


def _describe(field: FieldSpec, exc: ValidationError) -> ApiError:
    """Turn a validation failure into Telegram's 400 wording for the top-level ``field``."""
    if exc.path == field.name and not any(_is_structured(t) for t in field.types):
        return bad_request(f'parameter "{field.name}" {exc.problem}')
    label = "reply keyboard markup" if field.name == "reply_markup" else field.name
    return bad_request(f'can\'t parse {label} JSON object: field "{exc.path}" {exc.problem}')
