// The tablet app: start a session, answer one item at a time, wait for the next, see the result.
// No ability is shown during the test. The tablet never knows the key: it sends what the student
// chose (the option's id as shown, the number or text typed, the boxes ticked, one value per
// blank) and the server scores it. A failed submit is retried with the same event_id, so the
// pipeline counts it once. A timed test shows the time left; when it runs out the tablet reads
// the session, which the server then finishes. Item content is HTML the server sanitised at
// import (docs/items.md); it is checked again here against the same allow-list before it is shown.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, studentId: null, answered: 0, deadline: null, ticker: null };

function show(id) {
  for (const s of ["start", "item", "waiting", "result"]) $(s).hidden = s !== id;
}

const api = Auth.api;

// the server's allow-list (irtcat.importer.content), again: content is sanitised twice
const TAGS = new Set(("p br span div b i em strong u sub sup small code pre blockquote q cite abbr dfn kbd samp var " +
  "hr h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table caption thead tbody tfoot tr th td colgroup col figure figcaption " +
  "img audio source label address math mi mn mo ms mtext mspace mrow mfrac msqrt mroot msub msup msubsup munder " +
  "mover munderover mtable mtr mtd mstyle mpadded mphantom menclose mmultiscripts mprescripts none semantics " +
  "annotation").split(" "));
const ATTRS = {
  img: ["src", "alt", "width", "height"], audio: ["src", "controls"], source: ["src", "type"],
  td: ["colspan", "rowspan", "scope"], th: ["colspan", "rowspan", "scope"], col: ["span"], ol: ["start", "type"],
  span: ["data-response"], div: ["data-response"], math: ["display"], mi: ["mathvariant"],
  mo: ["stretchy", "fence", "separator", "form", "lspace", "rspace"], mfrac: ["linethickness"],
  mstyle: ["displaystyle", "scriptlevel", "mathvariant"], mtd: ["columnspan", "rowspan"], menclose: ["notation"],
  annotation: ["encoding"],
};

function clean(node) {
  for (const child of [...node.childNodes]) {
    if (child.nodeType === Node.TEXT_NODE) continue;
    if (child.nodeType !== Node.ELEMENT_NODE || !TAGS.has(child.localName)) { child.remove(); continue; }
    for (const a of [...child.attributes]) {
      const ok = (ATTRS[child.localName] || []).includes(a.name) &&
        (a.name !== "src" || /^(https?:)?\/\//.test(a.value) || /^https?:/.test(a.value));
      if (!ok) child.removeAttribute(a.name);
    }
    clean(child);
  }
  return node;
}

// sanitised item content as nodes (a plain-text stem stays text)
function content(html) {
  const doc = new DOMParser().parseFromString(`<body>${html || ""}</body>`, "text/html");
  const frag = document.createDocumentFragment();
  frag.append(...clean(doc.body).childNodes);
  return frag;
}

const plain = (html) => content(html).textContent.trim();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function startTimer(view) {
  clearInterval(state.ticker);
  state.deadline = view.remaining_seconds == null ? null : Date.now() + 1000 * view.remaining_seconds;
  $("timer").hidden = state.deadline === null;
  if (state.deadline === null) return;
  const tick = async () => {
    const left = Math.max(0, Math.round((state.deadline - Date.now()) / 1000));
    $("timer").textContent = `Time left ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    $("timer").classList.toggle("low", left <= 60);
    // a screen reader hears the time left at five minutes and at one (the ticking timer is not announced)
    if (left === 300 || left === 60) $("time-alert").textContent = `${left / 60} minute${left === 60 ? "" : "s"} left`;
    if (left === 0 && !$("item").hidden) {
      clearInterval(state.ticker);
      render(await api("GET", `/sessions/${encodeURIComponent(state.session.session_id)}`));
    }
  };
  tick();
  state.ticker = setInterval(tick, 1000);
}

function render(view) {
  state.session = view;
  state.answered = view.answered;
  if (view.status === "finished") { clearInterval(state.ticker); $("timer").hidden = true; return renderResult(view.result); }
  startTimer(view);
  const item = view.item;
  $("progress").textContent = `Question ${item.seq}`;
  $("passage").hidden = !item.passage;
  $("passage").replaceChildren(content(item.passage));
  $("stem").replaceChildren(content(item.stem || item.item_id));
  const box = $("options");
  box.replaceChildren();
  $("submit-answer").hidden = true;
  for (const b of $("item").querySelectorAll("button")) b.disabled = false;   // answer() disabled them
  state.collect = null;
  const numeric = item.kind === "numeric" && !item.responses;
  $("numeric").hidden = !numeric;
  $("numeric-value").value = "";
  if (item.responses) renderResponses(item);
  else {
    $("hint").textContent = numeric && item.partial_credit
      ? "Partial credit: an answer close to the right one earns part of the points. Type your answer and press Enter."
      : numeric ? "Type your answer and press Enter."
      : item.partial_credit ? "Partial credit: an answer close to the right one earns part of the points. Tap an answer, or press 1–4."
      : "Tap an answer, or press 1–4.";
    (numeric ? [] : item.options || []).forEach((option, i) => box.appendChild(optionButton(option, i)));
  }
  $("speak").hidden = !(view.accommodations && view.accommodations.text_to_speech);
  document.body.classList.toggle("large-font", Boolean(view.accommodations && view.accommodations.large_font));
  show("item");
  (numeric ? $("numeric-value") : $("item").querySelector("#options button, #stem input, #stem select, #stem button"))?.focus();
}

function optionButton(option, i) {
  const b = document.createElement("button");
  b.type = "button";
  b.append(content(option.text));
  b.dataset.choice = option.id;
  b.setAttribute("aria-label", `Answer ${i + 1}: ${plain(option.text)}`);
  b.addEventListener("click", () => answer(option.id));
  return b;
}

// an imported item: each response's widget where its placeholder stands in the stem
function renderResponses(item) {
  const single = item.responses.length === 1 && item.responses[0].kind === "choice";
  const getters = {};
  for (const r of item.responses) {
    let slot = $("stem").querySelector(`[data-response="${CSS.escape(r.id)}"]`);
    if (!slot) { slot = document.createElement("div"); $("stem").appendChild(slot); }
    if (r.prompt) { const p = document.createElement("p"); p.className = "prompt"; p.id = `prompt-${r.id}`; p.append(content(r.prompt)); slot.appendChild(p); }
    const labelled = r.prompt ? `prompt-${r.id}` : "stem";
    if (single) {
      const group = document.createElement("div");
      group.className = "options";
      group.setAttribute("role", "group");
      group.setAttribute("aria-labelledby", labelled);
      r.options.forEach((option, i) => group.appendChild(optionButton(option, i)));
      slot.appendChild(group);
    } else if (r.kind === "choice" || r.kind === "multiple_response") {
      const box = document.createElement("fieldset");
      box.className = "choices";
      box.setAttribute("aria-labelledby", labelled);
      const type = r.kind === "choice" ? "radio" : "checkbox";
      for (const option of r.options) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = type; input.name = `r-${r.id}`; input.value = option.id;
        label.append(input, content(option.text));
        box.appendChild(label);
      }
      slot.appendChild(box);
      getters[r.id] = () => {
        const ticked = [...box.querySelectorAll("input:checked")].map((x) => x.value);
        return type === "radio" ? ticked[0] : ticked;
      };
    } else if (r.kind === "inline_choice") {
      const select = document.createElement("select");
      select.setAttribute("aria-label", "Choose the missing word");
      select.append(new Option("…", ""));
      for (const option of r.options) select.append(new Option(plain(option.text), option.id));
      slot.appendChild(select);
      getters[r.id] = () => select.value || undefined;
    } else {
      const input = document.createElement("input");
      input.type = "text";
      input.className = "blank";
      input.autocomplete = "off";
      input.setAttribute("aria-label", r.kind === "numeric" ? "Type a number" : "Type your answer");
      if (r.kind === "numeric") input.inputMode = "decimal";
      slot.appendChild(input);
      getters[r.id] = () => {
        const text = input.value.trim();
        if (!text) return undefined;
        if (r.kind !== "numeric") return text;
        const value = Number(text.replace(",", "."));
        return Number.isFinite(value) ? value : undefined;
      };
    }
  }
  $("hint").textContent = single ? "Tap an answer, or press 1–4."
    : item.responses.some((r) => r.kind === "multiple_response") ? "Tick every answer that applies, then press Submit."
    : "Fill in the answer, then press Submit.";
  if (single) return;
  $("submit-answer").hidden = false;
  state.collect = () => {
    const values = {};
    for (const r of item.responses) {
      const v = getters[r.id]();
      if (v === undefined) return undefined;
      values[r.id] = v;
    }
    return item.responses.length === 1 ? values[item.responses[0].id] : values;
  };
}

const STOPPED = {
  max_items: "You answered every question of this test.",
  se_threshold: "We know your level well enough now.",
  theta_change: "We know your level well enough now.",
  classification: "We know your level well enough now.",
  time_limit: "Your time is up.",
  bank_exhausted: "There were no more questions for you.",
};

function renderResult(result) {
  // the score on the test's reporting scale, as the server computed it (policy.scale)
  $("score").textContent = String(result.scale_score);
  $("level").textContent = result.level ? `Level: ${result.level}` : "";
  $("score-detail").textContent =
    `± ${result.scale_se} points · ${result.items_answered} questions. ${STOPPED[result.stop_reason] || "The test is over."}`;
  $("result").dataset.theta = String(result.theta);
  show("result");
}

async function answer(choice) {
  const item = state.session.item;
  for (const b of $("item").querySelectorAll("button")) b.disabled = true;
  window.speechSynthesis?.cancel();
  const event = {
    schema_version: 3, event_id: uuid(), session_id: state.session.session_id,
    student_id: state.studentId, item_id: item.item_id, seq: item.seq, choice,
    answered_at: new Date().toISOString(),
  };
  show("waiting");
  $("waiting-text").textContent = "Choosing your next question…";
  for (let attempt = 0; ; attempt++) {
    try {
      await api("POST", `/sessions/${encodeURIComponent(event.session_id)}/answers`, event);
      break;
    } catch (err) {
      if (err.status === 409) {   // the session moved on (finished, out of time): show where it is
        return render(await api("GET", `/sessions/${encodeURIComponent(event.session_id)}`));
      }
      if (err.status === 400 || err.status === 403 || err.status === 404) {
        $("waiting-text").textContent = `Could not send the answer: ${err.message}`; return;
      }
      $("waiting-text").textContent = "Connection problem — trying again…";
      await sleep(Math.min(4000, 300 * 2 ** attempt));   // same event_id: counted once
    }
  }
  let delay = 300;
  for (;;) {
    await sleep(delay);
    delay = Math.min(2000, delay * 1.5);
    try {
      const view = await api("GET", `/sessions/${encodeURIComponent(event.session_id)}`);
      if (view.answered > state.answered || view.status !== "active") return render(view);
    } catch (err) {
      $("waiting-text").textContent = "Connection problem — still waiting…";
    }
  }
}

$("start-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("start-error").textContent = "";
  state.studentId = $("student").value.trim();
  try {
    await Auth.signIn(state.studentId, $("password").value);
    $("password").value = "";
    render(await api("POST", "/sessions", { student_id: state.studentId, test_id: $("test").value.trim() }));
  } catch (err) {
    $("start-error").textContent = `Could not start: ${err.message}`;
  }
});

$("numeric").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = Number($("numeric-value").value.trim().replace(",", "."));
  if (Number.isFinite(value)) answer(value);
});

$("submit-answer").addEventListener("click", () => {
  const value = state.collect?.();
  $("hint").textContent = value === undefined ? "Please answer every part first." : $("hint").textContent;
  if (value !== undefined) answer(value);
});

// text to speech (an accommodation): the browser reads the passage, the stem and the options
$("speak").addEventListener("click", () => {
  const parts = [$("passage").hidden ? "" : $("passage").textContent, $("stem").textContent,
    ...[...$("item").querySelectorAll("#options button, #stem .options button")].map((b, i) => `Answer ${i + 1}: ${b.textContent}`)];
  speechSynthesis.cancel();
  speechSynthesis.speak(new SpeechSynthesisUtterance(parts.filter(Boolean).join(". ")));
});

$("again").addEventListener("click", () => show("start"));

document.addEventListener("keydown", (e) => {
  if ($("item").hidden || !$("numeric").hidden || !$("submit-answer").hidden) return;
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  const k = Number(e.key);
  const buttons = $("item").querySelectorAll("#options button, #stem .options button");
  if (k >= 1 && k <= 4) buttons[k - 1]?.click();
});
