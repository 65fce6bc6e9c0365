"""Strict YAML configs: `yaml.safe_load` into dataclasses, where an unknown key or a wrong type is an error;
and JSON objects read with errors that name the file."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

# Presets and recipes ship inside the package (package data), so names resolve in any install, editable or not.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the key and what is allowed."""


# libyaml's safe loader when PyYAML has it: the same documents, read about 10x faster (a list of 100k shots
# in 7 s instead of 60), with a bounded nesting depth.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Configs, shot lists and JSON side files are small; a larger file is a mistake (or an attack on the parser).
MAX_TEXT_FILE_BYTES = 16 * 2**20


def read_text_file(path: Path, what: str, error: type[Exception] = ConfigError) -> str:
    """The UTF-8 text of a config-like file of at most MAX_TEXT_FILE_BYTES, with errors naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_FILE_BYTES:
            raise error(f"{path}: {what} is {size:,} bytes; at most {MAX_TEXT_FILE_BYTES:,} are read")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as decode_error:
        raise error(f"{path}: {what} is not UTF-8 text ({decode_error})") from decode_error
    except OSError as os_error:
        raise error(f"cannot read {what} {path}: {os_error.strerror or os_error}") from os_error


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with PyYAML's safe loader (no arbitrary objects), with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = read_text_file(path, "the file")
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error
    except RecursionError as error:
        raise ConfigError(f"{path}: nested too deeply to be a config") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set `{"section.key": value}` overrides in a loaded YAML mapping, in place; returns it. Validation is
    left to `from_dict`, so a misspelt key is refused with the allowed ones named."""
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set {dotted!r}: {key!r} holds {child!r}, not a section")
            node = child
        node[leaf] = value
    return data


BASE_KEY = "base"  # a config's `base: NAME` (or a path) names the config it extends


def load_layered_yaml(path: str | Path, cls: type, folder: str = "") -> dict[str, Any]:
    """Read a YAML config for dataclass `cls` that may extend another with `base: NAME_OR_PATH`.

    A NAME is a config in `omni/configs/<folder>/`; a path (with a .yaml or .yml suffix) is read relative to
    the extending file's folder. The extending file's values go over its base's: a section (a key whose field
    in `cls` is itself a dataclass, such as `optim`) merges key by key, recursively, and any other value
    (`steps`, the `tasks` mapping, `model.transformer`) replaces the base's whole, as `--set` does. A chain of
    bases is followed to its end; a cycle or a missing base is a ConfigError naming the files.
    """
    chain: list[Path] = []

    def read(path: Path) -> dict[str, Any]:
        chain.append(path.resolve())
        data = load_yaml(path)
        if BASE_KEY not in data:
            return data
        base = data.pop(BASE_KEY)
        base_path = _base_path(base, path, folder)
        if base_path.resolve() in chain:
            names = " -> ".join(p.name for p in [*chain, base_path.resolve()])
            raise ConfigError(f"{path}: `base:` makes a cycle ({names})")
        return merge_sections(cls, read(base_path), data)

    return read(Path(path))


def _base_path(base: Any, extending: Path, folder: str) -> Path:
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{extending}: base must name a config or a .yaml path, got {base!r}")
    candidate = Path(base)
    if candidate.suffix in (".yaml", ".yml"):
        path = candidate if candidate.is_absolute() else extending.parent / candidate
        if not path.is_file():
            raise ConfigError(f"{extending}: base {base!r} is not a file ({path})")
        return path
    path = CONFIG_DIR / folder / f"{base}.yaml"
    if "/" in base or not path.is_file():
        raise ConfigError(
            f"{extending}: base {base!r} is not a config: choose one of {preset_names(folder)} or a .yaml path"
        )
    return path


def merge_sections(cls: type, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base` for dataclass `cls`: dataclass-typed sections merge key by key, recursively;
    every other value replaces. Neither input is changed."""
    hints = typing.get_type_hints(cls)
    merged = dict(base)
    for key, value in over.items():
        section = hints.get(key)
        if (
            dataclasses.is_dataclass(section)
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = merge_sections(section, merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_config_path(name_or_path: str | Path, folder: str = "") -> Path:
    """A preset name (`tiny`, `toy`) resolves to `omni/configs/<folder>/<name>.yaml`; anything else is a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    preset = CONFIG_DIR / folder / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    raise ConfigError(
        f"unknown preset {str(name_or_path)!r}: choose one of {preset_names(folder)} or give a path to a .yaml file"
    )


def preset_names(folder: str = "") -> list[str]:
    """The configs shipped in `omni/configs/<folder>/`, by name."""
    return sorted(p.stem for p in (CONFIG_DIR / folder).glob("*.yaml"))


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses.

    Unknown keys, missing required keys and values of the wrong type raise `ConfigError` naming the key path.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}"
        )
    values = {}
    for name, field in fields.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            values[name] = _convert(hints[name], data[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where or cls.__name__}: missing required key {name!r}")
    return cls(**values)


def to_dict(obj: Any) -> Any:
    """The inverse of `from_dict`: plain dicts, lists and scalars that `yaml.safe_dump` accepts."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {list(args)}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, found {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, found {len(value)}")
            return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        converted = [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, found {type(value).__name__}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; it is meant as a number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, found {value!r}")
        if value != value:
            raise ConfigError(f"{key}: NaN is not allowed")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, found {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, found {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, found {value!r}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{key}: expected {hint.__name__}, found {type(value).__name__} {value!r}")
    return value


def read_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A JSON object from `path`; errors name the file and say it is `what` (e.g. "the shard index")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} is missing")
    text = read_text_file(path, what, ValueError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: {what} is not valid JSON ({error})") from error
    except RecursionError as error:
        raise ValueError(f"{path}: {what} is nested too deeply") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what} must be a JSON object, found {type(data).__name__}")
    return data
