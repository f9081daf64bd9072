"""Fidelity tests run against a real sandbox over HTTP: the fixtures come from hubspot.sandbox.testing."""

from hubspot.sandbox.testing import pytest_configure, sandbox, sandbox_api  # noqa: F401
