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


def _load_yaml(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def _registry() -> Registry:
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


def validate(cfg: Mapping[str, Any] | None, source: str = "config") -> dict[str, Any]:
    """Validate ``cfg`` (a copy is made), fill defaults and return it.

    Raises :class:`HepmlError` with one line naming ``source`` and the key at fault.
    """
    data = copy.deepcopy(dict(cfg or {}))
    registry = _registry()
    schema = registry.contents(ROOT_SCHEMA)
    validator = _Validator(schema, registry=registry)
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path))
    )
    if errors:
        raise HepmlError(f"{source}: {_message(errors[0])}")
    return data


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a config file; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise HepmlError(f"config file '{path}' does not exist")
    try:
        cfg = _load_yaml(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise HepmlError(f"config file '{path}': not valid YAML{where}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise HepmlError(
            f"config file '{path}': top level must be a mapping, got {type(cfg).__name__}"
        )
    return validate(cfg, source=str(path))


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
