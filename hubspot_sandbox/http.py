"""Request, response, routing and HubSpot-shaped errors for the sandbox server.

The sandbox is a plain WSGI-free stdlib server: every handler takes a ``Request`` and the
``SandboxState`` and returns a ``Response`` (or raises ``HubSpotError``). Nothing here imports Django.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters filled in by the router
    _json: Any = None
    _json_parsed: bool = False

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Request:
        path, _, qs = target.partition("?")
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(qs, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            raw_body=raw_body,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def arg_list(self, name: str) -> list[str]:
        """Repeated and comma-separated query values; HubSpot takes both (`properties=a,b&properties=c`)."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v for v in value.split(",") if v)
        return out

    def arg_bool(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        if value is None:
            return default
        return value.lower() in {"true", "1", "yes"}

    def json(self) -> Any:
        """The JSON body; an unparsable body is HubSpot's 400 'Invalid input JSON'."""
        if not self._json_parsed:
            self._json_parsed = True
            if not self.raw_body:
                self._json = None
            else:
                try:
                    self._json = json.loads(self.raw_body)
                except ValueError as exc:
                    raise HubSpotError(
                        400,
                        "VALIDATION_ERROR",
                        f"Invalid input JSON on line 1, column {getattr(exc, 'colno', 1)}: {exc}",
                    ) from exc
        return self._json


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        # orjson writes a page of records several times faster than json.dumps; the text is the same JSON
        # (compact, UTF-8 rather than \u escapes, which HubSpot's own replies use too).
        try:
            return orjson.dumps(self.body, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # a value orjson doesn't know (a Decimal, a subclass of int): the slow way
            return json.dumps(self.body, separators=(",", ":")).encode()


class HubSpotError(Exception):
    """An error answered with HubSpot's error body: status, category, message, correlationId, ..."""

    def __init__(
        self,
        status: int,
        category: str | None,
        message: str,
        *,
        sub_category: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub_category = sub_category
        self.errors = errors
        self.context = context
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
        }
        body.update(self.extra)
        # Rate-limit bodies carry errorType/policyName instead of a category (reference §3).
        if self.category:
            body["category"] = self.category
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.errors is not None:
            body["errors"] = self.errors
        if self.context is not None:
            body["context"] = self.context
        return body

    def response(self) -> Response:
        return Response(self.status, self.body(), dict(self.headers))


Handler = Callable[[Request, Any], Response]


class Router:
    """Method + path-template routing: ``/crm/v3/objects/{objectType}/{objectId}``.

    A ``{name}`` segment matches one path segment; ``{name:path}`` matches the rest. Routes are tried in
    registration order, so register literal paths (``/batch/read``) before ``/{objectId}``.
    """

    def __init__(self) -> None:
        # (method, compiled pattern, handler, template); the template names the route in request stats
        self._routes: list[tuple[str, re.Pattern[str], Handler, str]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{pattern}/?$"), handler, template))

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, template, handler)
            return handler

        return register

    def resolve(self, request: Request) -> Handler:
        return self.match(request)[0]

    def match(self, request: Request) -> tuple[Handler, str]:
        """The handler and the route template it was registered under (request stats count by template)."""
        path_matched = False
        for method, pattern, handler, template in self._routes:
            match = pattern.match(request.path)
            if not match:
                continue
            path_matched = True
            if method == request.method:
                request.params = match.groupdict()
                return handler, template
        if path_matched:
            raise HubSpotError(405, "METHOD_NOT_ALLOWED", f"HTTP method {request.method} is not supported.")
        # HubSpot answers an unknown path with an empty-bodied 404; a JSON body helps SDKs that parse it.
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to route {request.method} {request.path}")
