"""``/docs``: the OpenAPI document as a plain HTML page, rendered on the server — no
JavaScript and nothing fetched from the internet (machines running relayq often have no
route to a CDN). The document itself is at ``/openapi.json``."""

from __future__ import annotations

import html
import json
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

__all__ = ("PlainDocsPlugin",)

_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "h2{margin-top:2rem;font-family:monospace}pre{background:#f4f4f4;padding:.5rem;"
    "overflow:auto}code{background:#f4f4f4}"
)


class PlainDocsPlugin(OpenAPIRenderPlugin):
    def __init__(self, path: str = "/docs") -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        info = openapi_schema.get("info", {})
        title = html.escape(str(info.get("title", "API")))
        parts = [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{title} "
            f"{html.escape(str(info.get('version', '')))}</h1>",
            f"<p>{html.escape(str(info.get('description', '')))}</p>",
            "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Every request "
            "but <code>/v1/health</code> needs a key: <code>Authorization: Bearer rq_...</code>"
            " (<code>relayq keys create</code>).</p>",
        ]
        for path, operations in sorted(openapi_schema.get("paths", {}).items()):
            for method in _METHODS:
                if method in operations:
                    parts.append(_operation(method, path, operations[method]))
        parts.append("</body></html>")
        return "".join(parts).encode()


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    summary = html.escape(str(operation.get("summary", "")))
    description = html.escape(str(operation.get("description", "")))
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = body.get("schema")
    shown = (
        f"<p>Request body:</p><pre>{html.escape(json.dumps(schema, indent=1))}</pre>"
        if schema
        else ""
    )
    params = ", ".join(
        html.escape(f"{p.get('name')} ({p.get('in')})") for p in operation.get("parameters", [])
    )
    return (
        f"<h2>{method.upper()} {html.escape(path)}</h2><p><b>{summary}</b></p>"
        f"<p>{description}</p>" + (f"<p>Parameters: {params}</p>" if params else "") + shown
    )
