"""Fidelity tests run against a real sandbox over HTTP: the fixtures come from hubspot_sandbox.testing."""

from hubspot_sandbox.testing import pytest_configure, sandbox, sandbox_api  # noqa: F401
