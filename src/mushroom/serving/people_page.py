"""The page for people at ``/``: describe the mushroom in front of you, see the verdict, why,
and what to check next.

The form is written here, on the server, from the served model's catalogue: one control per
trait, grouped as a field guide groups them, every one starting at "I don't know" (left
out, never sent as ``"missing"``). ``page/page.js`` asks ``POST /classify`` as traits are
given and writes the answer into the page; ``page/page.css`` lays it out. Everything the
page needs ships in the package and the policy lets it load nothing from elsewhere, not
even an inline script or style: the page works offline and in a classroom without internet.
"""

from __future__ import annotations

import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mushroom.core.catalogue import DatasetCatalogue, Trait
from mushroom.lifecycle.model_card import ModelCard
from mushroom.serving.schema import measurement_ranges

FIELD_GUIDE = (
    ("Cap", ("cap_",)),
    ("Gills", ("gill_",)),
    ("Stem", ("stalk_", "stem_")),
    ("Ring and veil", ("ring_", "veil_", "has_ring")),
    ("Spore print", ("spore_print_",)),
    ("Smell and bruising", ("odor", "bruises", "does_bruise_or_bleed")),
    ("Where it grows", ("habitat", "population", "season")),
)
"""The sections of the form, in the order a field guide describes a mushroom: each trait is
in the first whose name prefixes match its own."""

POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "object-src 'none'"
)
HEADERS = {
    "content-security-policy": POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
ASSETS = {
    "/page.js": "text/javascript; charset=utf-8",
    "/page.css": "text/css; charset=utf-8",
    "/favicon.svg": "image/svg+xml",
}
WARNING = (
    "Never eat a wild mushroom on the word of an app or a model: show it to an expert who "
    "can see and hold it."
)


def sections(catalogue: DatasetCatalogue) -> list[tuple[str, list[Trait]]]:
    """The catalogue's traits in the field guide's sections (empty sections left out);
    ValueError naming a trait no section takes."""
    placed: dict[str, list[Trait]] = {title: [] for title, _ in FIELD_GUIDE}
    for trait in catalogue.traits:
        title = next((t for t, names in FIELD_GUIDE if trait.name.startswith(names)), None)
        if title is None:
            raise ValueError(f"{catalogue.name} trait {trait.name} is in no section of the form")
        placed[title].append(trait)
    return [(title, traits) for title, traits in placed.items() if traits]


def readable(text: str) -> str:
    return text.replace("_", " ").replace("-", " ")


def _control(trait: Trait, catalogue: DatasetCatalogue, policy: dict, ranges: dict) -> str:
    name, label = trait.name, readable(trait.name)
    control_id = f"trait-{name}"
    if trait.is_numeric:
        seen = policy["training"]["measurements"][name]
        high = ranges[name][1]
        hint = (
            f"{trait.unit}, from 0 to {high:g}; the mushrooms the model learned from measured "
            f"{seen['min']:g} to {seen['max']:g} {trait.unit}. Leave it empty if not measured."
        )
        field = (
            f'<input type="number" id="{control_id}" name="{name}" min="0" max="{high:g}" '
            f'step="any" inputmode="decimal" data-label="{label}" data-unit="{trait.unit}" '
            f'aria-describedby="{control_id}-hint">'
        )
        return (
            f'<div class="trait"><label for="{control_id}">{label.capitalize()} '
            f"({trait.unit})</label>{field}"
            f'<p class="hint" id="{control_id}-hint">{html.escape(hint)}</p></div>'
        )
    codes = {value: code for code, value in trait.codes.items()}
    options = "".join(
        f'<option value="{value}">{readable(value)} ({codes[value]})</option>'
        for value in trait.describable_values
    )
    markers = " ".join(sorted(catalogue.poison_markers.get(name, ())))
    return (
        f'<div class="trait"><label for="{control_id}">{label.capitalize()}</label>'
        f'<select id="{control_id}" name="{name}" data-label="{label}" '
        f'data-poison-marks="{markers}"><option value="">I don\'t know</option>{options}'
        "</select></div>"
    )


def render(card: ModelCard, catalogue: DatasetCatalogue, policy: dict) -> str:
    """The page for the model of ``card``, whose ``policy.json`` gives each measurement's
    training range and the largest value the service accepts."""
    ranges = measurement_ranges(policy)
    fieldsets = "".join(
        f"<fieldset><legend>{title}</legend>"
        + "".join(_control(t, catalogue, policy, ranges) for t in traits)
        + "</fieldset>"
        for title, traits in sections(catalogue)
    )
    version = html.escape(card.full_version)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Is this mushroom edible? ({version})</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/page.css">
<script src="/page.js" defer></script>
</head>
<body>
<header>
<h1>Is this mushroom edible?</h1>
<p class="warning" id="warning"><strong>{WARNING}</strong></p>
<p>Describe the mushroom in front of you. Leave whatever you are not sure of at
<em>I don't know</em>: a guess can make a poisonous mushroom look edible. The answer below
changes as you go, and says what to check next.</p>
<noscript><p class="error">This page needs JavaScript to ask the model. Without it, use
the API: <a href="/docs">/docs</a>.</p></noscript>
</header>
<main>
<form id="describe" novalidate aria-label="Describe the mushroom"
 data-dataset="{html.escape(card.dataset)}">
{fieldsets}
<p><button type="reset">Start again</button></p>
</form>
<section id="answer" aria-labelledby="answer-title" aria-busy="true" tabindex="-1">
<h2 id="answer-title">The answer</h2>
<div id="verdict" class="verdict" data-verdict="none" role="status">
<p class="verdict-word" id="verdict-word">Asking the model…</p>
<p id="verdict-detail"></p>
<p class="warning verdict-warning" id="verdict-warning" hidden><strong>{WARNING}</strong></p>
</div>
<p class="error" id="error" role="alert" hidden></p>
<div id="why" hidden>
<h3>Why</h3>
<ul id="reasons"></ul>
<div id="species-fit" hidden><h3>Species it fits</h3><ul id="species"></ul></div>
<h3>What to check next</h3>
<p id="no-edible" hidden></p>
<ol id="check-next"></ol>
<h3>What did it turn out to be?</h3>
<p>If an expert identified it, tell the model's keepers. This answer is
<code id="request-id"></code>.</p>
<p class="feedback"><button type="button" data-true-class="edible">It was edible</button>
<button type="button" data-true-class="poisonous">It was poisonous</button></p>
<p id="feedback-result" role="status"></p>
</div>
<p class="about">Model {version}, trained on the {html.escape(card.dataset)} data. For
programs: <a href="/docs">the API</a>.</p>
</section>
</main>
<a id="verdict-bar" href="#answer" data-verdict="none">The answer</a>
</body>
</html>
"""


def _asset(path: str) -> bytes:
    return resources.files("mushroom.serving").joinpath("page", path.lstrip("/")).read_bytes()


def routes(card: ModelCard, catalogue: DatasetCatalogue, policy: dict) -> list[Route]:
    """``GET /`` and the page's script and style, built once at start."""
    page = render(card, catalogue, policy).encode()
    assets = {path: (_asset(path), media) for path, media in ASSETS.items()}

    def show_page(_request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)

    def show_asset(request: Request) -> Response:
        body, media = assets[request.url.path]
        return Response(body, media_type=media, headers=HEADERS)

    return [Route("/", show_page, methods=["GET"])] + [
        Route(path, show_asset, methods=["GET"]) for path in ASSETS
    ]
