"""The API's own page at ``/docs`` and the ``info`` of its OpenAPI document.

BentoML's page loads Google Tag Manager and links to BentoML's GitHub; its OpenAPI
``info`` says version "None" and, as description, badges fetched from third-party hosts
and links to BentoML's Slack and Twitter. This middleware answers ``GET /docs`` with Swagger
UI from the files BentoML serves itself under ``/static_content`` (no CDN: it works
offline), under a policy that lets the page load nothing from elsewhere, and gives
``/docs.json`` the project's title, description and model version, and what
``api_schema.document_http`` adds (the error answers, required bodies, ``GET /model``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mushroom.lifecycle.model_card import ModelCard
from mushroom.serving.http_guard import send_whole
from mushroom.serving.schema import document_http

# BaseLayout: no top bar with a box that loads other documents; validatorUrl: null, or
# Swagger UI sends the document's address to validator.swagger.io for a badge.
SWAGGER_SETUP = """
window.ui = SwaggerUIBundle({
  url: "./docs.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
});
"""


def project_info(card: ModelCard, store_tag: str) -> dict[str, str]:
    """OpenAPI ``info`` for the service that serves the model of ``card``."""
    version = card.full_version
    return {
        "title": "Mushroom classifier: is it edible?",
        "version": version,
        "description": (
            "Classifies described mushrooms as **edible**, **poisonous** or **uncertain**; "
            "*uncertain* means do not eat. Every answer says why.\n\n"
            f"Model `{version}` (store entry `{store_tag}`): {card.model} with "
            f"{card.encoder} encoding, trained on the {card.dataset} data at "
            f"{card.trained_at}, commit `{card.git_commit[:12]}`. "
            "`GET /model` gives its card: metrics, verdict policy, familiarity detector."
        ),
    }


def _page(info: dict[str, str]) -> tuple[bytes, bytes]:
    """The page, and a Content-Security-Policy allowing only this server and its script."""
    script_hash = base64.b64encode(hashlib.sha256(SWAGGER_SETUP.encode()).digest()).decode()
    page = f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{html.escape(info["title"])} ({html.escape(info["version"])})</title>
    <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script>{SWAGGER_SETUP}</script>
  </body>
</html>
"""
    policy = (
        f"default-src 'self'; script-src 'self' 'sha256-{script_hash}'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    )
    return page.encode(), policy.encode()


class DocsPage:
    def __init__(self, app: ASGIApp, info: dict[str, str]):
        self.app, self.info = app, info
        self.page, self.policy = _page(info)
        self.document: tuple[list, bytes] | None = None  # /docs.json, once built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
        elif scope["path"] == "/docs":
            headers = [(b"content-type", b"text/html; charset=utf-8")]
            await send_whole(
                send, 200, headers + [(b"content-security-policy", self.policy)], self.page
            )
        elif scope["path"] == "/docs.json":
            await self.docs_json(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def docs_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """BentoML's document, completed and its ``info`` replaced: built on the first
        request that BentoML answers 200, then kept (it cannot change while serving)."""
        if self.document is not None:
            await send_whole(send, 200, *self.document)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if start["status"] == 200:
            body = json.dumps(document_http(json.loads(body)) | {"info": self.info}).encode()
            kept = [(k, v) for k, v in headers if k.lower() == b"content-type"]
            self.document = kept, body  # not BentoML's per-request headers
        await send_whole(send, start["status"], headers, body)
