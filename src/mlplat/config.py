"""Read YAML config files into strict pydantic models, with errors that point at ``file:line:column``.

The loader composes the YAML node tree once, keeps a map from key path to position, and builds plain
Python values with the safe constructor only (the same types ``yaml.safe_load`` gives). Validation errors
from pydantic, and :class:`~mlplat.errors.ConfigError` raised with a ``path`` inside validators, are turned
into ``file:line:column: key.path: message`` using that map.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from mlplat.errors import ConfigError, KeyPath, format_path, format_value
from mlplat.units import parse_duration

__all__ = ["ConfigModel", "Duration", "PositiveDuration", "YamlDocument", "load_config", "parse_yaml",
           "validate_document"]

M = TypeVar("M", bound=BaseModel)
Position = tuple[int, int]  # 1-based line and column

_MAX_ERRORS = 10
# pydantic's numeric bound errors, reworded the way STYLE.md writes rules: "must be >= 0, got -0.1".
_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        # The loader appends ", got <value>" itself.
        raise ValueError("expected a duration from 0 to 100 years such as '90s', '10m', '1h30m' or '1d'") from None


#: Seconds, written in a config as ``90``, ``"90s"``, ``"10m"``, ``"1h30m"`` or ``"1d"``.
Duration = Annotated[float, BeforeValidator(_duration)]
#: A :data:`Duration` that must be > 0.
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        """Refuse True/False where a field takes a number for a model built in Python as well (pydantic reads
        them as 1 and 0); a file gets the same check, with positions, from :func:`validate_document`."""
        if isinstance(data, dict):
            flags = _bools_for_numbers(cls, data, ())
            if flags:
                raise ValueError("; ".join(f"{format_path(path)}: {_not_a_number(flag)}" for path, flag in flags))
        return data

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the config as a user writes it (what ``<group> schema`` prints).

        pydantic's schema describes the values after parsing: a duration is a number, so an editor checking
        ``max_duration: 60m`` against it refused every bundled example. Every number here also takes text
        (a duration, a share, a rate, or a number YAML left as text, such as ``0.9e9``), and the bounds that
        pydantic leaves as ``gt``/``ge`` on such fields become JSON Schema's own keywords.
        """
        return _as_written(cls.model_json_schema())


_BOUND_KEYWORDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}
_NUMBER_KEYWORDS = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_AS_TEXT = {"type": "string", "description": "text the loader reads as a number: '90s', '10m', '5%', '40/s', '1e6'"}


def _as_written(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_written(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties"):  # names, not keywords
            out[key] = {name: _as_written(sub) for name, sub in value.items()}
        elif key in _BOUND_KEYWORDS and isinstance(value, int | float) and not isinstance(value, bool):
            out[_BOUND_KEYWORDS[key]] = value
        else:
            out[key] = _as_written(value)
    if out.get("type") in ("number", "integer"):
        number = {key: out.pop(key) for key in _NUMBER_KEYWORDS if key in out}
        out["anyOf"] = [number, _AS_TEXT]
    return out


@dataclass(frozen=True)
class YamlDocument:
    """Parsed YAML with the position of every key and value, so later checks can point at the file."""

    source: str
    data: Any
    positions: dict[tuple[str | int, ...], Position] = field(default_factory=dict)
    key_positions: dict[tuple[str | int, ...], Position] = field(default_factory=dict)
    # Where this document sits in the file, for one cut out of a larger document (a scenario's inline
    # `pricing:`): messages show the key path from the top of the file.
    prefix: tuple[str | int, ...] = ()

    def position(self, path: KeyPath, *, key: bool = False) -> Position | None:
        """Position of the value at the deepest part of ``path`` found in the document.

        Parts not in the document (a union's tag, a missing key) are skipped. With ``key=True`` the
        position of the key itself is preferred, which is where an "unknown key" error belongs.
        """
        node = self.document_path(path)
        if key and node in self.key_positions:
            return self.key_positions[node]
        return self.positions.get(node)

    def document_path(self, path: KeyPath) -> tuple[str | int, ...]:
        """The longest chain of ``path``'s parts that exists in the document."""
        node: tuple[str | int, ...] = ()
        for part in path:
            if (*node, part) in self.positions:
                node = (*node, part)
        return node

    def error(self, path: KeyPath, message: str) -> ConfigError:
        """A :class:`ConfigError` located at ``path`` in this document."""
        return ConfigError(_locate(self, path, message))


def _locate(doc: YamlDocument, path: KeyPath, message: str, *, key: bool = False, names_key: bool = True) -> str:
    pos = doc.position(path, key=key)
    where = f"{doc.source}:{pos[0]}:{pos[1]}" if pos else doc.source
    # Show the path as the user wrote it: drop parts that are not in the file (a union's tag), but keep
    # the last part when it names a missing or unknown key (``names_key``).
    shown = list(doc.document_path(path))
    if names_key and path and path[-1] not in shown[-1:]:
        shown.append(path[-1])
    shown = [*doc.prefix, *shown]
    label = f" {format_path(shown)}:" if shown else ""
    return f"{where}:{label} {message}"


class _MarkedLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (safe_load silently keeps the last one)."""


# Most values a config may expand to. Aliases (*name) reuse a node, so 400 bytes of nested aliases can
# stand for billions of values ("billion laughs"): walking or validating them would never end.
MAX_VALUES = 200_000


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once every alias is expanded; each distinct node counted once."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = size
    return size


def _record(node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], Position],
            keys: dict[tuple[str | int, ...], Position], source: str) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise ConfigError(f"{source}:{line}:{col}: {format_path(path) or '<top>'}: "
                                  f"duplicate key {key!r}")
            seen.add(key)
            keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _record(value_node, (*path, key), out, keys, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, (*path, index), out, keys, source)


def parse_yaml(text: str, source: str = "<string>") -> YamlDocument:
    """Parse YAML text safely, keeping positions; raise :class:`ConfigError` on any syntax problem."""
    loader = _MarkedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{source}: the file is empty; expected a YAML mapping")
        size = _expanded_size(node, {})
        if size > MAX_VALUES:
            raise ConfigError(f"{source}: its aliases expand to {size:,} values, more than the {MAX_VALUES:,} a "
                              "config may hold; write the values out, or use fewer nested aliases")
        positions: dict[tuple[str | int, ...], Position] = {}
        key_positions: dict[tuple[str | int, ...], Position] = {}
        _record(node, (), positions, key_positions, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from exc
    except ValueError as exc:  # a scalar the safe constructor cannot build: 2026-02-30, an int of 5,000 digits
        raise ConfigError(f"{source}: a value cannot be read: {str(exc).split(';')[0]}") from None
    except RecursionError:
        # PyYAML composes and constructs recursively: hundreds of nested levels exhaust Python's stack.
        raise ConfigError(f"{source}: nested too deeply to read (hundreds of levels); a config is a few levels "
                          "deep") from None
    finally:
        loader.dispose()
    return YamlDocument(source=source, data=data, positions=positions, key_positions=key_positions)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; expected a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if b"\x00" in raw:
        raise ConfigError(f"{path}: is a binary file (contains NUL bytes); expected a YAML text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (bad byte at offset {exc.start}); "
                          "expected a YAML text file") from exc


def _field_names_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Best-effort: the field names of the model that owns the last part of ``loc`` (for suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        current = _descend(current, part)
        if current is None:
            return []
    models = [m for m in _models_in(current)]
    return sorted({name for m in models for name in m.model_fields})


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _models_in(arg)]
    return []


def _has_tag(model: type[BaseModel], tag: str) -> bool:
    """Whether a field of ``model`` is a ``Literal`` that allows ``tag`` (a discriminated variant)."""
    return any(typing.get_origin(info.annotation) is typing.Literal and tag in typing.get_args(info.annotation)
               for info in model.model_fields.values())


def _descend(tp: Any, part: str | int) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _descend(args[0], part)
    if origin in (typing.Union, types.UnionType):
        # A discriminated union puts the tag in the path: go to the variant it names, so suggestions
        # come from that variant's keys only.
        tagged = [m for arg in args for m in _models_in(arg) if isinstance(part, str) and _has_tag(m, part)]
        if tagged:
            return tagged[0]
        for arg in args:
            found = _descend(arg, part)
            if found is not None:
                return found
        return tp if isinstance(part, str) else None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(str(part))
        return info.annotation if info is not None else None
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _describe(model: type[BaseModel], error: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str]:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _field_names_at(model, loc)
        key = loc[-1] if loc else ""
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        message = f"unknown key {key!r}"
        if hint:
            message += f"; did you mean {hint[0]!r}?"
        elif allowed:
            message += f"; expected one of: {', '.join(allowed)}"
        return loc, message
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "finite_number":
        return loc, f"must be a finite number, got {error['input']!r}"
    if kind == "too_short" and "ctx" in error:
        least, got = error["ctx"]["min_length"], error["ctx"]["actual_length"]
        return loc, f"must have at least {least} {'entry' if least == 1 else 'entries'}, got {got}"
    bound = _BOUNDS.get(kind)
    if bound and "ctx" in error:
        message = f"must be {bound[0]} {format_value(error['ctx'][bound[1]])}"
    else:
        message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if "input" in error and kind not in ("model_type", "dict_type") and not isinstance(
        error["input"], dict | list
    ) and ", got " not in message:  # a validator's own message may already say what it got
        message += f", got {format_value(error['input'])}"
    return loc, message


def _leaves(tp: Any) -> list[Any]:
    """The plain types a field takes: ``Annotated`` unwrapped, unions flattened."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(tp) for leaf in _leaves(arg)]
    return [tp]


def _wants_number(tp: Any) -> bool:
    """Whether a field takes a number but not a bool (pydantic's lax mode reads ``true`` there as 1)."""
    leaves = _leaves(tp)
    if any(leaf in (bool, Any, object) for leaf in leaves):
        return False
    return any(leaf in (int, float) for leaf in leaves)


def _tags_agree(model: type[BaseModel], value: dict[Any, Any]) -> bool:
    """Whether ``value`` agrees with each ``Literal`` field of ``model`` it sets (``kind: poisson``)."""
    for name, info in model.model_fields.items():
        if typing.get_origin(info.annotation) is typing.Literal and name in value:
            if value[name] not in typing.get_args(info.annotation):
                return False
    return True


def _branch(tp: Any, value: Any) -> Any:
    """The one part of ``tp`` a mapping or list ``value`` goes to, or None when that is not clear.

    A model is chosen by its ``Literal`` tags, as pydantic's discriminated unions do.
    """
    if isinstance(value, dict):
        fits = [leaf for leaf in _leaves(tp) if typing.get_origin(leaf) in (dict, Mapping) or (
            isinstance(leaf, type) and issubclass(leaf, BaseModel) and _tags_agree(leaf, value))]
    else:
        fits = [leaf for leaf in _leaves(tp) if typing.get_origin(leaf) in (list, tuple, set, frozenset)]
    return fits[0] if len(fits) == 1 else None


def _not_a_number(flag: bool) -> str:
    return f"expected a number, got {str(flag).lower()}"


def _bools_for_numbers(tp: Any, value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], bool]]:
    """Where the document has YAML's ``true``/``false`` in a field that takes a number.

    pydantic reads them as 1 and 0 (a weight of ``true``, a rate of ``false``), so the loader refuses them
    before validating: one walk of the data beside the model's types, for every config model alike.
    """
    if isinstance(value, bool):
        return [(path, value)] if _wants_number(tp) else []
    if not isinstance(value, dict | list):
        return []
    part = _branch(tp, value)
    if part is None:
        return []
    args = typing.get_args(part)
    if isinstance(value, list):
        if typing.get_origin(part) is tuple and args and args[-1] is not Ellipsis:
            pairs = list(zip(args, value, strict=False))
        else:
            pairs = [(args[0] if args else Any, item) for item in value]
        return [found for index, (inner, item) in enumerate(pairs)
                for found in _bools_for_numbers(inner, item, (*path, index))]
    if typing.get_origin(part) in (dict, Mapping):
        fields = {key: args[1] if len(args) == 2 else Any for key in value}
    else:
        by_name = {**{name: info.annotation for name, info in part.model_fields.items()},
                   **{info.alias: info.annotation for info in part.model_fields.values() if info.alias}}
        fields = {key: by_name[key] for key in value if key in by_name}
    return [found for key, inner in fields.items() for found in _bools_for_numbers(inner, value[key], (*path, key))]


def validate_document(doc: YamlDocument, model: type[M]) -> M:
    """Validate a parsed document into ``model``; every error names ``file:line:column`` and the key path."""
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__
        raise doc.error((), f"expected a YAML mapping at the top level, got a {kind}")
    flags = _bools_for_numbers(model, doc.data, ())
    if flags:
        lines = [_locate(doc, path, _not_a_number(flag)) for path, flag in flags[:_MAX_ERRORS]]
        if len(flags) > _MAX_ERRORS:
            lines.append(f"... and {len(flags) - _MAX_ERRORS} more errors")
        raise ConfigError("\n".join(lines))
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        lines = []
        for error in errors[:_MAX_ERRORS]:
            # A missing key has no position of its own: point at its parent mapping.
            loc, message = _describe(model, error)
            lines.append(_locate(doc, loc, message, key=error["type"] == "extra_forbidden",
                                 names_key=error["type"] in ("extra_forbidden", "missing")))
        if len(errors) > _MAX_ERRORS:
            lines.append(f"... and {len(errors) - _MAX_ERRORS} more errors")
        raise ConfigError("\n".join(lines)) from exc
    except ConfigError as exc:
        if exc.source is None and exc.path:
            raise doc.error(exc.path, exc.message) from exc
        if exc.source is None:
            raise ConfigError(f"{doc.source}: {exc.message}") from exc
        raise


def load_config(path: str | Path, model: type[M]) -> M:
    """Read ``path`` (YAML) and validate it into ``model``.

    Examples
    --------
    >>> import tempfile, os
    >>> from pydantic import Field
    >>> class Demo(ConfigModel):
    ...     alpha: float = Field(gt=0, lt=1)
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "demo.yaml")
    >>> _ = open(p, "w").write("alpha: 0.05\\n")
    >>> load_config(p, Demo).alpha
    0.05
    """
    return validate_document(load_document(path), model)


def load_document(path: str | Path) -> YamlDocument:
    """Read and parse ``path`` without validating it (for checks that need positions later)."""
    path = Path(path)
    return parse_yaml(_read_text(path), source=str(path))


__all__ += ["load_document"]
