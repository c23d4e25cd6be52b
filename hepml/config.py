"""Configuration: one YAML file, validated against a JSON schema with defaults.

The schema lives in ``hepml/schemas/`` (``workflow/schemas`` links there) and is
split by top-level section, one file each. :func:`load` and :func:`validate`
fill defaults and reject unknown keys, wrong types and out-of-range values with
a :class:`~hepml.errors.HepmlError` whose one-line message names the key.

Library code never takes this dict: each stage builds its own typed dataclass
from its section (for example ``TrackerConfig.from_config(cfg)``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hepml.errors import HepmlError

SCHEMA_DIR = Path(__file__).parent / "schemas"
ROOT_SCHEMA = "config.schema.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (YAML 1.2 forbids it;
    PyYAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str) -> Any:
    """YAML text to Python with the safe loader, duplicate keys refused."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def _load_yaml(path: Path) -> Any:
    with open(path) as f:
        return safe_load(f.read())


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    """Every schema file, read once per process (a :class:`Registry` is immutable)."""
    resources = []
    for p in sorted(SCHEMA_DIR.glob("*.yaml")):
        resources.append(
            (p.name, Resource.from_contents(_load_yaml(p), default_specification=DRAFT202012))
        )
    return Registry().with_resources(resources)


def _with_defaults(validator_class: Any) -> Any:
    """Extend a validator so that it fills ``default`` values (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: Any, properties: Mapping[str, Any], instance: Any, schema: Any
    ) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(err: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in err.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _message(err: jsonschema.ValidationError) -> str:
    key = _key_path(err)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        where = f"{key}." if err.absolute_path else ""
        return f"unknown key '{where}{extra[0]}'" + (
            f" (allowed: {', '.join(sorted(err.schema.get('properties', {})))})"
            if err.schema.get("properties")
            else ""
        )
    if err.validator == "type":
        return f"key '{key}': expected {err.validator_value}, got {err.instance!r}"
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"key '{key}': value {err.instance!r} is out of range ({err.validator} {err.validator_value})"
    if err.validator == "required":
        return f"key '{key}': {err.message}"
    return f"key '{key}': {err.message}"


_NON_STRING_TYPES = {"number", "integer", "boolean", "object", "array", "null"}


def _expects_non_string(err: jsonschema.ValidationError) -> bool:
    kinds = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
    return "string" not in kinds and bool(set(kinds) & _NON_STRING_TYPES)


def _parse_strings(data: dict[str, Any], validator: Any) -> None:
    """YAML-parse string values where the schema expects another type, in place.

    ``snakemake --config 'workflow={tracker_shards: 3}'`` hands nested values
    over as strings ('3'); parsed, they are validated like values of a file.
    """
    for _ in range(100):  # each pass fixes every string it finds; nesting needs a few
        changed = False
        for err in validator.iter_errors(data):
            if err.validator != "type" or not isinstance(err.instance, str):
                continue
            if not _expects_non_string(err) or not err.absolute_path:
                continue
            try:
                value = safe_load(err.instance)
            except yaml.YAMLError:
                continue
            if isinstance(value, str):
                continue
            *parents, last = err.absolute_path
            node: Any = data
            for p in parents:
                node = node[p]
            node[last] = value
            changed = True
        if not changed:
            return


def _first_non_finite(node: Any, path: tuple[str, ...] = ()) -> tuple[str, float] | None:
    if isinstance(node, float) and not math.isfinite(node):
        return ".".join(path) or "<top level>", node
    if isinstance(node, Mapping):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for k, v in items:
        found = _first_non_finite(v, (*path, str(k)))
        if found is not None:
            return found
    return None


def validate(
    cfg: Mapping[str, Any] | None, source: str = "config", parse_strings: bool = False
) -> dict[str, Any]:
    """Validate ``cfg`` (a copy is made), fill defaults and return it.

    Every number must be finite (no ``.nan`` or ``.inf``). ``parse_strings``
    YAML-parses string values where the schema expects a number, boolean, list
    or mapping (as Snakemake passes nested ``--config`` values).

    Raises :class:`HepmlError` with one line naming ``source`` and the key at fault.
    """
    data = copy.deepcopy(dict(cfg or {}))
    registry = _registry()
    schema = registry.contents(ROOT_SCHEMA)
    validator = _Validator(schema, registry=registry)
    if parse_strings:
        _parse_strings(data, validator)
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path))
    )
    if errors:
        raise HepmlError(f"{source}: {_message(errors[0])}")
    bad = _first_non_finite(data)
    if bad is not None:
        raise HepmlError(f"{source}: key '{bad[0]}': value {bad[1]} is not a finite number")
    return data


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    return validate({})


def schema_default(key: str) -> Any:
    """The schema's default of a dotted ``key`` (``"training.lr"``), a fresh copy.

    For Python-side defaults that must equal the schema's by construction, as
    ``field(default_factory=lambda: schema_default("training.lr"))``.
    """
    node: Any = _defaults()
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"the schema has no default for '{key}'")
        node = node[part]
    return copy.deepcopy(node)


def read_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML config file (not validated): UTF-8, valid YAML, no duplicate key.

    Errors are one-line :class:`HepmlError` naming the file (and line).
    """
    path = Path(path)
    if path.is_dir():
        raise HepmlError(f"config file '{path}' is a directory")
    if not path.is_file():
        raise HepmlError(f"config file '{path}' does not exist")
    try:
        cfg = _load_yaml(path)
    except UnicodeDecodeError as exc:
        raise HepmlError(
            f"config file '{path}': not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise HepmlError(f"config file '{path}': cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        what = f": {problem}" if problem and "duplicate key" in problem else ""
        raise HepmlError(f"config file '{path}': not valid YAML{where}{what}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise HepmlError(
            f"config file '{path}': top level must be a mapping, got {type(cfg).__name__}"
        )
    return cfg or {}


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a config file; errors name the file and the key."""
    return validate(read_file(path), source=str(path))


T = TypeVar("T")


def from_section(cls: type[T], section: Mapping[str, Any], **overrides: Any) -> T:
    """Dataclass ``cls`` from a validated config section, key by key.

    Each field takes the section's key of the same name, cast to the field's
    type when that is int, float, bool or str (the schema has already checked
    types and ranges); fields absent from the section keep their defaults, and
    ``overrides`` (values computed by the caller) win over both.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in overrides:
            kwargs[f.name] = overrides[f.name]
        elif f.name in section:
            kind = hints[f.name]
            value = section[f.name]
            kwargs[f.name] = kind(value) if kind in (int, float, bool, str) else value
    return cls(**kwargs)


def dump(cfg: Mapping[str, Any]) -> str:
    """The config as YAML text (keys in schema order), for resolved-config files."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)
