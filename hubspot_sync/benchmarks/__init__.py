"""Benchmarks run by `python manage.py benchmark NAME`.

A benchmark is a function ``run(quick: bool) -> Result`` registered under a name. It measures on this
machine, prints nothing itself, and returns its figures: the command prints them as a table and writes
them as JSON. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps


@dataclass
class Result:
    figures: dict[str, Any]  # the JSON body: flat keys the issue names, nested objects where they help
    rows: list[tuple[str, str]] = field(default_factory=list)  # (label, value) lines for the table
    notes: list[str] = field(default_factory=list)


Benchmark = Callable[[bool], Result]
_REGISTRY: dict[str, Benchmark] = {}
_INTERNAL: set[str] = set()  # parts other benchmarks run in a child process; not run on their own by --all
# The integration's own benchmarks; an app's are in its ``benchmarks`` (or ``benchmark``) module, found among
# the installed apps (see ``app_modules``), so that benchmarks of orders or carts stay beside their models.
MODULES = [
    "hubspot_sync.benchmarks.sandbox",
    "hubspot_sync.benchmarks.sync",
]
APP_MODULE_NAMES = ("benchmarks", "benchmark")


def register(name: str, *, internal: bool = False) -> Callable[[Benchmark], Benchmark]:
    def decorator(function: Benchmark) -> Benchmark:
        _REGISTRY[name] = function
        if internal:
            _INTERNAL.add(name)
        return function

    return decorator


def app_modules() -> list[str]:
    """The installed apps' benchmark modules (``orders.benchmarks``, ``carts.benchmark``)."""
    found = []
    for config in apps.get_app_configs():
        for name in APP_MODULE_NAMES:
            module = f"{config.name}.{name}"
            if module != __name__ and importlib.util.find_spec(module) is not None:
                found.append(module)
    return found


def registry() -> dict[str, Benchmark]:
    for module in [*MODULES, *app_modules()]:
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))


def public() -> list[str]:
    return [name for name in registry() if name not in _INTERNAL]


def machine() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
