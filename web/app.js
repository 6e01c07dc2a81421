// The tablet app: start a session, answer one item at a time, wait for the next, see the result.
// No ability is shown during the test. A failed submit is retried with the same event_id, so
// the pipeline counts it once.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, studentId: null, answered: 0 };

function show(id) {
  for (const s of ["start", "item", "waiting", "result"]) $(s).hidden = s !== id;
}

const api = Auth.api;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function render(view) {
  state.session = view;
  state.answered = view.answered;
  if (view.status === "finished") return renderResult(view.result);
  const item = view.item;
  $("progress").textContent = `Question ${item.seq}`;
  $("stem").textContent = item.stem || item.item_id;
  const box = $("options");
  box.replaceChildren();
  (item.options || ["0", "1"]).forEach((text, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.dataset.index = String(i);
    b.setAttribute("aria-label", `Answer ${i + 1}: ${text}`);
    b.addEventListener("click", () => answer(i));
    box.appendChild(b);
  });
  show("item");
  box.firstChild?.focus();
}

function renderResult(result) {
  const score = Math.round(500 + 100 * result.theta);
  $("score").textContent = String(score);
  $("score-detail").textContent =
    `± ${Math.round(100 * result.se)} points · ${result.items_answered} questions · stopped by ${result.stop_reason}`;
  $("result").dataset.theta = String(result.theta);
  show("result");
}

async function answer(index) {
  const item = state.session.item;
  for (const b of $("options").children) b.disabled = true;
  const event = {
    schema_version: 1, event_id: uuid(), session_id: state.session.session_id,
    student_id: state.studentId, item_id: item.item_id, seq: item.seq,
    response: item.key === null || item.key === undefined ? 0 : Number(index === item.key),
    answered_at: new Date().toISOString(),
  };
  show("waiting");
  $("waiting-text").textContent = "Choosing your next question…";
  for (let attempt = 0; ; attempt++) {
    try {
      await api("POST", `/sessions/${encodeURIComponent(event.session_id)}/answers`, event);
      break;
    } catch (err) {
      if (err.status === 400) { $("waiting-text").textContent = `Could not send the answer: ${err.message}`; return; }
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

$("again").addEventListener("click", () => show("start"));

document.addEventListener("keydown", (e) => {
  if ($("item").hidden) return;
  const k = Number(e.key);
  if (k >= 1 && k <= 4) $("options").children[k - 1]?.click();
});
