"""The page for people at ``/``, in a real browser (Debian's Chromium driven by Playwright)
against real `bentoml serve`s of each dataset's promoted model. Every verdict the page shows
is checked against the API's answer to the same description; a failing test leaves a
screenshot (its path is in the report)."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3

import httpx
import pytest

from conftest import ON_FAILURE
from mushroom.core.catalogue import NOT_RECORDED, SECONDARY, UCI
from mushroom.data.raw import read_raw
from mushroom.serving.people_page import sections
from servefixtures import serving

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    # Without these Chromium calls Google's hosts at start, which this machine refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VERDICT_WORDS = {
    "edible": "✓ Edible",
    "poisonous": "✕ Poisonous",
    "uncertain": "? Uncertain — do not eat",
    "none": "! No answer",
}


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make test` installs it with apt-get"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """One person's tab on one server: every request the page makes is kept."""

    def __init__(self, browser, server, width: int = 1280, height: int = 900):
        self.server = server
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.requests: list[tuple[str, str]] = []
        self.asked: list[dict] = []  # the bodies of POST /classify
        self.context.on("request", self.keep)
        self.page = self.context.new_page()
        self.script_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        self.page.goto(f"{server.url}/")
        self.settled()

    def keep(self, request) -> None:
        self.requests.append((request.method, request.url))
        if request.method == "POST" and request.url == f"{self.server.url}/classify":
            self.asked.append(request.post_data_json)

    def settled(self) -> None:
        """Until the page has the answer to its description as it stands (or an error)."""
        self.page.wait_for_selector("#answer[aria-busy=false]", timeout=15_000)

    def describe(self, mushroom: dict) -> None:
        for name, value in mushroom.items():
            if isinstance(value, str):
                self.page.select_option(f"#trait-{name}", value)
            else:
                self.page.fill(f"#trait-{name}", f"{value:g}")
        self.settled()

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def verdict(self) -> str:
        return self.page.locator("#verdict").get_attribute("data-verdict")

    def items(self, selector: str) -> list[str]:
        return [t.strip() for t in self.page.locator(selector).all_inner_texts()]


@pytest.fixture
def visit(browser, request, tmp_path):
    """Opens the page of a server (``visit(server)``). When the test fails, each page is
    screenshot and the report says where; a test whose page's script raised fails."""
    opened: list[Visit] = []

    def open_page(server, **viewport) -> Visit:
        opened.append(Visit(browser, server, **viewport))
        return opened[-1]

    def screenshots() -> str:
        shots = []
        for number, each in enumerate(opened):
            shots.append(tmp_path / f"failure-{number}.png")
            each.page.screenshot(path=shots[-1], full_page=True)
        return "screenshots: " + ", ".join(map(str, shots))

    request.node.stash.setdefault(ON_FAILURE, []).append(screenshots)
    yield open_page
    for each in opened:
        each.context.close()
    assert not [e for each in opened for e in each.script_errors]


def classify(server, mushrooms: list[dict]) -> list[dict]:
    answered = httpx.post(f"{server.url}/classify", json={"mushrooms": mushrooms}, timeout=60)
    assert answered.status_code == 200, answered.text
    return answered.json()


def described(row: dict) -> dict:
    """A raw row as a person gives it: what the source did not record is not known."""
    return {
        name: value
        for name, value in row.items()
        if value is not None and value == value and value != NOT_RECORDED
    }


FORM_AS_DATA = """() => Object.fromEntries(
  [...document.querySelectorAll("#describe select, #describe input")].map((c) => [c.id, {
    type: c.type,
    value: c.value,
    label: document.querySelector(`label[for=${c.id}]`).textContent,
    hint: document.getElementById(`${c.id}-hint`)?.textContent ?? null,
    options: c.options ? [...c.options].map((o) => [o.value, o.textContent]) : null,
  }]))"""


def real_descriptions(server, pulled_repo, dataset: str) -> list[tuple[dict, dict]]:
    """600 real mushrooms of ``dataset`` as a person describes them, with their answers."""
    catalogue = UCI if dataset == "uci" else SECONDARY
    rows = read_raw(dataset, pulled_repo / "data" / "raw").sample(600, random_state=3)
    mushrooms = [described(row) for row in rows[catalogue.trait_names].to_dict("records")]
    return list(zip(mushrooms, classify(server, mushrooms), strict=True))


def test_every_trait_of_both_datasets_has_a_place_in_the_form():
    for catalogue in (UCI, SECONDARY):
        placed = [t.name for _, traits in sections(catalogue) for t in traits]
        assert sorted(placed) == sorted(catalogue.trait_names), catalogue.name
    assert [title for title, _ in sections(UCI)][:3] == ["Cap", "Gills", "Stem"]
    assert "Where it grows" in [title for title, _ in sections(SECONDARY)]


@pytest.mark.slow  # its server is looked up by name, which tests/conftest.py cannot see
@pytest.mark.parametrize("dataset", ["uci", "secondary"])
def test_the_form_comes_from_the_served_catalogue_and_starts_at_i_dont_know(
    dataset, request, browser, visit
):
    server = request.getfixturevalue(f"{dataset}_server")
    catalogue = UCI if dataset == "uci" else SECONDARY
    person = visit(server)
    # The whole form in one call: a round trip per control took half a minute.
    form = person.page.evaluate(FORM_AS_DATA)
    in_sections = [f"trait-{t.name}" for _, traits in sections(catalogue) for t in traits]
    assert list(form) == in_sections
    for trait in catalogue.traits:
        control = form[f"trait-{trait.name}"]
        assert control["label"].lower().startswith(trait.name.replace("_", " "))
        assert control["value"] == ""
        if trait.is_numeric:
            assert control["type"] == "number" and control["label"].endswith(f"({trait.unit})")
            assert re.search(
                rf"from 0 to [\d.]+; .* measured [\d.]+ to [\d.]+ {trait.unit}", control["hint"]
            )
        else:
            first, *values = control["options"]
            assert first == ["", "I don't know"]
            assert [value for value, _ in values] == list(trait.describable_values)
            code = {name: code for code, name in trait.codes.items()}
            assert all(text.endswith(f"({code[value]})") for value, text in values)
    legends = person.items("legend")
    assert legends == [title for title, _ in sections(catalogue)]
    # Nothing given yet: the page asked about the empty description and says where to start.
    empty = classify(server, [{}])[0]
    assert person.verdict() == empty["verdict"] == "uncertain"
    first_check = person.items("#check-next > li")[0]
    assert first_check.startswith(f"Check the {empty['check_next'][0]['trait'].replace('_', ' ')}")


def test_a_full_edible_description_is_edible_and_carries_the_warning(
    uci_server, browser, visit, pulled_repo
):
    answered = real_descriptions(uci_server, pulled_repo, "uci")
    mushroom = next(m for m, answer in answered if answer["verdict"] == "edible")
    person = visit(uci_server)
    assert not person.page.locator("#verdict-warning").is_visible()
    person.describe(mushroom)
    assert person.verdict() == "edible"
    assert person.text("#verdict-word") == VERDICT_WORDS["edible"]
    warning = person.page.locator("#verdict #verdict-warning")
    assert warning.is_visible() and "Never eat a wild mushroom" in warning.inner_text()
    assert person.page.locator("header .warning").is_visible()  # and at the top, always
    assert "is at most" in person.text("#verdict-detail")
    assert re.fullmatch(r"[0-9a-f]{32}", person.text("#request-id"))


def test_a_full_secondary_description_with_measurements_names_the_species(
    secondary_server, browser, visit, pulled_repo
):
    """The secondary model never answers edible to a person (every species leaves a trait
    blank, so a description either leaves it unknown or gives an undocumented value): its
    answers name the poisonous species a description fits."""
    answered = real_descriptions(secondary_server, pulled_repo, "secondary")
    mushroom, answer = next(
        (m, a) for m, a in answered if any(r.startswith("poisonous_species:") for r in a["reasons"])
    )
    assert any(isinstance(value, float) for value in mushroom.values())
    person = visit(secondary_server)
    person.describe(mushroom)
    assert person.verdict() == answer["verdict"], person.text("#error")
    species = [r.split(":", 1)[1] for r in answer["reasons"] if r.startswith("poisonous_species:")]
    reasons = person.items("#reasons li")
    for name in species:
        assert f"It fits {name}, a poisonous species." in reasons
    fits = [r.removeprefix("species:") for r in answer["reasons"] if r.startswith("species:")]
    assert person.items("#species li") == fits


def test_a_foul_smell_alone_is_poisonous_in_words_a_person_reads(uci_server, browser, visit):
    person = visit(uci_server)
    person.describe({"odor": "foul"})
    answer = classify(uci_server, [{"odor": "foul"}])[0]
    assert answer["verdict"] == person.verdict() == "poisonous"
    assert person.text("#verdict-word") == VERDICT_WORDS["poisonous"]
    assert "will not call it edible" in person.text("#verdict-detail")
    reasons = person.items("#reasons li")
    marked = "The odor is foul: the field guide this model learned from names it a mark of poison."
    assert marked in reasons
    assert not any(re.search(r"\w+=\w+|unknown:|unfamiliar", reason) for reason in reasons)
    assert not person.page.locator("#verdict-warning").is_visible()


def test_one_known_trait_is_uncertain_and_each_check_is_one_click_from_its_control(
    uci_server, browser, visit
):
    person = visit(uci_server)
    person.describe({"cap_color": "brown"})
    answer = classify(uci_server, [{"cap_color": "brown"}])[0]
    assert answer["verdict"] == person.verdict() == "uncertain"
    assert person.text("#verdict-word") == VERDICT_WORDS["uncertain"]
    checks = person.page.locator("#check-next button.check")
    first = answer["check_next"][0]
    assert checks.first.inner_text() == f"Check the {first['trait'].replace('_', ' ')}"
    for verdict in first["could_make"]:
        assert f"would make it {verdict}" in person.items("#check-next > li")[0]
    checks.first.click()
    focused = person.page.evaluate("document.activeElement.id")
    assert focused == f"trait-{first['trait']}"
    # Once nothing could make it edible, the page says so in plain words.
    person.describe({"odor": "foul", "cap_color": ""})
    assert person.verdict() == "poisonous"
    for mushroom in ({"spore_print_color": "green"}, {"gill_color": "buff"}):
        answer = classify(uci_server, [mushroom])[0]
        person.describe({"odor": ""} | mushroom)
        assert person.verdict() == answer["verdict"]
        shown = person.page.locator("#no-edible").is_visible()
        assert shown == (answer["verdict"] == "uncertain" and not answer["edible_possible"])
        person.describe({name: "" for name in mushroom})


def test_keyboard_alone_goes_from_the_first_control_to_the_answer(uci_server, browser, visit):
    person = visit(uci_server)
    page = person.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "trait-cap_shape"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused control shows no focus"
    while page.evaluate("document.activeElement.id") != "trait-odor":
        page.keyboard.press("Tab")
    while page.locator("#trait-odor").input_value() != "foul":
        page.keyboard.press("ArrowDown")  # a closed <select> steps through its options
    person.settled()
    assert person.verdict() == "poisonous"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.className") == "check":
            break
    else:
        pytest.fail("Tab never reached the first check in the answer")
    target = page.evaluate("document.activeElement.textContent").removeprefix("Check the ")
    page.keyboard.press("Enter")
    focused = page.evaluate("document.activeElement.id")
    assert page.locator(f"label[for={focused}]").inner_text().lower() == target


@pytest.mark.parametrize("width", [375, 640])  # a phone; a 1280-pixel window at 200 % zoom
def test_no_horizontal_scroll_on_a_small_screen_or_at_200_percent(
    width, uci_server, browser, visit
):
    person = visit(uci_server, width=width, height=800)
    person.describe({"cap_color": "brown", "odor": "none"})
    assert person.verdict() == "uncertain"
    overflow = person.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    assert person.page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 16
    bar = person.page.locator("#verdict-bar")  # below 56em the answer is after the form
    assert bar.is_visible() and bar.inner_text().startswith(VERDICT_WORDS["uncertain"])


def test_the_page_asks_only_its_own_server_once_per_change(uci_server, browser, visit):
    person = visit(uci_server)
    person.describe({"odor": "none"})
    person.describe({"cap_color": "brown"})
    person.describe({"gill_size": "broad"})
    classify_calls = [r for r in person.requests if r == ("POST", f"{uci_server.url}/classify")]
    assert len(classify_calls) == 4  # the empty description at load, then one per change
    assert person.asked[0] == {"mushrooms": [{}]}  # "I don't know" is left out, not "missing"
    given = {"odor": "none", "cap_color": "brown", "gill_size": "broad"}
    assert person.asked[-1] == {"mushrooms": [given]}
    assert ("GET", f"{uci_server.url}/page.js") in person.requests
    assert all(url.startswith(f"{uci_server.url}/") for _, url in person.requests)
    page = httpx.get(f"{uci_server.url}/", timeout=30)
    policy = page.headers["content-security-policy"]
    assert policy.startswith("default-src 'self';") and "http" not in policy
    assert not re.search(r"<script(?![^>]*\bsrc=\"/)|\sstyle=|\son\w+=", page.text)
    assert not re.search(r"(?:src|href)=\"(?!/|#)", page.text)


def test_an_unknown_value_or_a_measurement_out_of_range_is_named(
    uci_server, secondary_server, browser, visit
):
    person = visit(uci_server)
    person.describe({"odor": "none"})
    person.page.evaluate(
        "() => { const o = new Option('purple spots', 'purple-spots');"
        " document.getElementById('trait-odor').add(o); }"
    )
    person.describe({"odor": "purple-spots"})
    assert person.verdict() == "none"  # never the last verdict, as if it still held
    error = person.text("#error")
    assert error.startswith("The service could not answer:") and "odor" in error
    assert "purple-spots" in error and not person.page.locator("#why").is_visible()
    person.describe({"odor": "foul"})
    assert person.verdict() == "poisonous" and not person.page.locator("#error").is_visible()

    person = visit(secondary_server)
    person.describe({"cap_diameter": 100000.0})
    error = person.text("#error")
    assert person.verdict() == "none" and "cap_diameter" in error and "cm" in error


def test_a_failing_or_stopped_server_is_said_so_not_a_blank_page(
    uci_model, browser, visit, tmp_path
):
    with serving(uci_model, tmp_path) as server:
        person = visit(server)
        person.describe({"odor": "foul"})
        assert person.verdict() == "poisonous"
        with contextlib.closing(sqlite3.connect(server.log_path)) as db:
            db.execute("alter table predictions rename column verdict to verdict_was")
            db.commit()
        person.describe({"odor": "none"})
        assert person.verdict() == "none"
        error = person.text("#error")
        assert error.startswith("The service could not answer: the prediction log cannot record")
    person.describe({"odor": "foul"})
    assert person.verdict() == "none"
    assert "The service cannot be reached" in person.text("#error")


def test_the_feedback_buttons_store_a_label_for_the_answer_shown(uci_server, browser, visit):
    """And a second, other label is stored as a conflict the page names."""
    person = visit(uci_server)
    person.describe({"odor": "foul"})
    request_id = person.text("#request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    person.page.get_by_role("button", name="It was poisonous").click()
    result = person.page.locator("#feedback-result")
    result.filter(has_text="Stored").wait_for(timeout=10_000)
    assert result.inner_text() == f"Stored: answer {request_id} was poisonous. Thank you."
    with contextlib.closing(sqlite3.connect(uci_server.log_path)) as db:
        stored = db.execute(
            "select true_class from feedback where request_id = ?", (request_id,)
        ).fetchall()
    assert stored == [("poisonous",)]
    person.page.get_by_role("button", name="It was edible").click()
    result.filter(has_text="labelled otherwise").wait_for(timeout=10_000)
    assert "it counts as poisonous (the safe label wins)" in result.inner_text()
