// The page for people (mushroom/serving/people_page.py writes the form): asks POST /classify
// as traits are given and writes the answer in words a person reads. Talks only to the
// server that served it. An answer that failed never leaves the last verdict on show.
"use strict";

const WAIT_MS = 250; // debounce: one request per pause in typing or choosing
const SHOWN_CHECKS = 6; // the rest of check_next behind "more"
const WORDS = {
  edible: { word: "Edible", mark: "✓" },
  poisonous: { word: "Poisonous", mark: "✕" },
  uncertain: { word: "Uncertain — do not eat", mark: "?" },
  none: { word: "No answer", mark: "!" },
};

const form = document.getElementById("describe");
const $ = (id) => document.getElementById(id);
let asked = 0; // the number of the latest request: older answers are dropped
let inFlight = null;
let timer = null;
let requestId = null;

const control = (trait) => document.getElementById(`trait-${trait}`);
const traitLabel = (trait) => (control(trait) ? control(trait).dataset.label : trait.replace(/_/g, " "));
const readable = (value) => String(value).replace(/[-_]/g, " ");
const percent = (p) => (p < 0.001 ? "under 0.1 %" : p > 0.999 ? "over 99.9 %" : `${(100 * p).toFixed(1)} %`);

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function described() {
  const mushroom = {};
  const problems = [];
  for (const field of form.elements) {
    if (!field.name) continue;
    if (field.tagName === "INPUT") {
      if (field.validity.badInput) problems.push(`${field.dataset.label}: write a number in ${field.dataset.unit}, or leave it empty`);
      else if (field.value.trim() !== "") mushroom[field.name] = Number(field.value);
    } else if (field.value !== "") {
      mushroom[field.name] = field.value;
    }
  }
  return { mushroom, problems };
}

function sayError(message) {
  showVerdict("none", "The model gave no answer for this description.");
  $("why").hidden = true;
  $("error").textContent = message;
  $("error").hidden = false;
}

function showVerdict(verdict, detail) {
  const box = $("verdict");
  box.dataset.verdict = verdict;
  $("verdict-word").textContent = `${WORDS[verdict].mark} ${WORDS[verdict].word}`;
  $("verdict-detail").textContent = detail;
  $("verdict-warning").hidden = verdict !== "edible";
  const bar = $("verdict-bar");
  bar.dataset.verdict = verdict;
  bar.textContent = `${WORDS[verdict].mark} ${WORDS[verdict].word}: see the answer`;
}

function reasonSentence(reason, answer) {
  const [kind, ...rest] = reason.split(":");
  const what = rest.join(":");
  switch (kind) {
    case "unfamiliar":
      return "No known mushroom is like this description: we cannot vouch for it.";
    case "unseen": {
      const [trait, value] = what.split("=");
      return `No mushroom the model learned from has ${traitLabel(trait)} ${readable(value)}: we cannot vouch for it.`;
    }
    case "unknown":
      return `The ${traitLabel(what)} is not known: it is among the traits that could change the answer most.`;
    case "undocumented":
      return `No species it fits is documented with this ${traitLabel(what)}: the answer is the same whatever it really is.`;
    case "poisonous_species":
      return `It fits ${what}, a poisonous species.`;
    case "lookalike":
      return lookalikeSentence(what);
    case "borderline":
      return "Its chance of being poisonous lies between what the model calls edible and poisonous: the evidence is not strong enough either way.";
    case "no_edible_region":
      return "This model was not tested on enough poisonous mushrooms to ever answer edible.";
    case "species":
      return null; // listed under "Species it fits"
    default:
      return traitSentence(reason, answer.verdict);
  }
}

function lookalikeSentence(which) {
  if (which === "identical") return "A known poisonous mushroom has every trait given here.";
  if (!which.includes("=")) return `A poisonous species is too close to tell apart from what is given: ${which}.`;
  const differences = which.split(",").map((pair) => {
    const [trait, value] = pair.split("=");
    return `its ${traitLabel(trait)} is ${readable(value)}`;
  });
  const count = differences.length === 1 ? "one trait" : `${differences.length} traits`;
  return `A poisonous lookalike differs in ${count} only: ${differences.join(", ")}.`;
}

function traitSentence(reason, verdict) {
  const [trait, value] = reason.split("=");
  const unit = control(trait)?.dataset.unit;
  const given = `The ${traitLabel(trait)} is ${readable(value)}${unit ? ` ${unit}` : ""}`;
  const marks = (control(trait)?.dataset.poisonMarks ?? "").split(" ");
  if (verdict === "poisonous" && marks.includes(value)) {
    return `${given}: the field guide this model learned from names it a mark of poison.`;
  }
  if (verdict === "poisonous") return `${given}: among known mushrooms, this points most to poisonous.`;
  if (verdict === "edible") return `${given}: among known mushrooms, this points most to edible.`;
  return `${given}: this weighed most in the answer.`;
}

function verdictDetail(answer) {
  const [low, high] = answer.probability_range;
  if (answer.verdict === "edible") {
    const atMost = high < 0.001 ? "under 0.1 %" : `at most ${percent(high)}`;
    return `Like known edible mushrooms, with no poisonous lookalike near it: its chance of being poisonous is ${atMost}, whatever the traits not given are.`;
  }
  if (answer.verdict === "poisonous") {
    return "Whatever the traits not given are, this model will not call it edible.";
  }
  return `Do not eat it. From what is given, its chance of being poisonous could be anywhere from ${percent(low)} to ${percent(high)}.`;
}

function checkItem(check) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "check";
  button.textContent = `Check the ${traitLabel(check.trait)}`;
  button.addEventListener("click", () => {
    const field = control(check.trait);
    field.scrollIntoView({ block: "center" });
    field.focus();
  });
  li.append(button);
  const outcomes = check.could_make.map(
    (verdict) => `${check.values[verdict].map(readable).join(", ")} would make it ${verdict}`,
  );
  const note = document.createElement("span");
  note.textContent = outcomes.length
    ? `: ${outcomes.join("; ")}`
    : ": on its own it cannot change the answer; with other traits it may";
  li.append(note);
  return li;
}

function showAnswer(answer) {
  $("error").hidden = true;
  showVerdict(answer.verdict, verdictDetail(answer));
  const reasons = answer.reasons.map((r) => reasonSentence(r, answer)).filter(Boolean);
  $("reasons").replaceChildren(...reasons.map(item));
  const species = answer.reasons.filter((r) => r.startsWith("species:")).map((r) => r.slice(8));
  $("species").replaceChildren(...species.map(item));
  $("species-fit").hidden = species.length === 0;
  const noEdible = $("no-edible");
  noEdible.hidden = answer.edible_possible || answer.verdict !== "uncertain"; // poisonous says so
  noEdible.textContent = "An edible answer is no longer possible: whatever the traits not given are, this model will not call it edible.";
  const checks = answer.check_next.map(checkItem);
  if (!answer.check_next.length) checks.push(item("Nothing: every trait is given."));
  const list = $("check-next");
  list.replaceChildren(...checks.slice(0, SHOWN_CHECKS));
  if (checks.length > SHOWN_CHECKS) {
    const more = document.createElement("li");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = `${checks.length - SHOWN_CHECKS} more traits`;
    const rest = document.createElement("ol");
    rest.start = SHOWN_CHECKS + 1;
    rest.replaceChildren(...checks.slice(SHOWN_CHECKS));
    details.append(summary, rest);
    more.append(details);
    list.append(more);
  }
  requestId = answer.request_id;
  $("request-id").textContent = requestId;
  $("feedback-result").textContent = "";
  $("why").hidden = false;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return body.error;
  } catch (_) {
    // not JSON: the status says enough
  }
  return `HTTP ${response.status} ${response.statusText}`.trim();
}

// aria-busy on the answer while a change is not answered yet: assistive technology waits
// for the new verdict instead of reading the old one (and so can a test).
const busy = (yes) => $("answer").setAttribute("aria-busy", String(yes));

async function ask() {
  const { mushroom, problems } = described();
  const number = ++asked;
  if (inFlight) inFlight.abort();
  if (problems.length) {
    sayError(problems.join("; "));
    busy(false);
    return;
  }
  busy(true);
  inFlight = new AbortController();
  let response;
  try {
    response = await fetch("/classify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mushrooms: [mushroom] }),
      signal: inFlight.signal,
    });
  } catch (error) {
    if (error.name === "AbortError" || number !== asked) return;
    sayError(`The service cannot be reached (${error.message}): is it still running?`);
    busy(false);
    return;
  }
  try {
    if (!response.ok) {
      const why = await errorText(response);
      if (number === asked) sayError(`The service could not answer: ${why}`);
    } else {
      const answers = await response.json();
      if (number === asked) showAnswer(answers[0]);
    }
  } catch (error) {
    if (error.name === "AbortError" || number !== asked) return;
    sayError(`The page could not show the answer (${error.message}): reload the page`);
  }
  if (number === asked) busy(false);
}

function askSoon() {
  busy(true);
  clearTimeout(timer);
  timer = setTimeout(ask, WAIT_MS);
}

async function sendFeedback(trueClass) {
  const result = $("feedback-result");
  const about = requestId;
  try {
    const response = await fetch("/feedback", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ request_id: about, true_class: trueClass }),
    });
    if (!response.ok) {
      result.textContent = `Not stored: ${await errorText(response)}`;
      return;
    }
    const receipt = await response.json();
    if (receipt.conflict) {
      result.textContent = `Stored, but answer ${about} was labelled otherwise before: it counts as ${receipt.counts_as} (the safe label wins). Thank you.`;
    } else {
      result.textContent = receipt.stored
        ? `Stored: answer ${about} was ${trueClass}. Thank you.`
        : `Already stored: answer ${about} was ${trueClass}.`;
    }
  } catch (error) {
    result.textContent = `Not stored: the service cannot be reached (${error.message}).`;
  }
}

form.addEventListener("input", askSoon);
form.addEventListener("change", askSoon);
form.addEventListener("reset", () => setTimeout(ask, 0));
form.addEventListener("submit", (event) => event.preventDefault());
for (const button of document.querySelectorAll("[data-true-class]")) {
  button.addEventListener("click", () => sendFeedback(button.dataset.trueClass));
}
ask();
