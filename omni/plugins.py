"""Plug-ins: parts that live above the code that uses them, named here and imported on first use.

The toy world is a wing of its own (docs/architecture.md): training streams its clips and the benchmark
harness scores its scenes, yet no library module imports it. Each plug-in is a group, a name in that group
and the object that provides it, given as "module:attribute" (built in) or as the object (`register`).
"""

from __future__ import annotations

import importlib

BUILT_IN: dict[tuple[str, str], str] = {
    ("clip_source", "toyworld"): "omni.toyworld.plugins:clip_source",
    ("suite_scene", "toyworld"): "omni.toyworld.plugins:suite_scene",
}
_registered: dict[tuple[str, str], object] = {}


def register(group: str, name: str, provider: object) -> None:
    """Make `load(group, name)` return `provider`; a name is registered once per group."""
    if not name or not name.isidentifier():
        raise ValueError(f"a {group} name must be an identifier, got {name!r}")
    key = (group, name)
    if key in BUILT_IN or (key in _registered and _registered[key] is not provider):
        raise ValueError(f"a {group} named {name!r} is already registered")
    _registered[key] = provider


def names(group: str) -> list[str]:
    """Every name of `group`, built in or registered, sorted."""
    return sorted({name for g, name in (*BUILT_IN, *_registered) if g == group})


def load(group: str, name: str) -> object:
    """The provider of plug-in `name` of `group`; a ValueError names the known ones."""
    key = (group, name)
    if key in _registered:
        return _registered[key]
    if key not in BUILT_IN:
        raise ValueError(f"unknown {group} {name!r}; known are {names(group)}")
    module, _, attribute = BUILT_IN[key].partition(":")
    return getattr(importlib.import_module(module), attribute)
