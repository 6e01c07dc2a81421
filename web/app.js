// The tablet app: start a session, answer one item at a time, wait for the next, see the result.
// No ability is shown during the test. The tablet never knows the key: it sends what the student
// chose (the option's id as shown, or the number typed) and the server scores it. A failed submit
// is retried with the same event_id, so the pipeline counts it once. A timed test shows the time
// left; when it runs out the tablet reads the session, which the server then finishes.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, studentId: null, answered: 0, deadline: null, ticker: null };

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

function startTimer(view) {
  clearInterval(state.ticker);
  state.deadline = view.remaining_seconds == null ? null : Date.now() + 1000 * view.remaining_seconds;
  $("timer").hidden = state.deadline === null;
  if (state.deadline === null) return;
  const tick = async () => {
    const left = Math.max(0, Math.round((state.deadline - Date.now()) / 1000));
    $("timer").textContent = `Time left ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    $("timer").classList.toggle("low", left <= 60);
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
  $("stem").textContent = item.stem || item.item_id;
  const box = $("options");
  box.replaceChildren();
  const numeric = item.kind === "numeric";
  $("numeric").hidden = !numeric;
  $("numeric-value").value = "";
  $("hint").textContent = numeric && item.partial_credit
    ? "Partial credit: an answer close to the right one earns part of the points. Type your answer and press Enter."
    : numeric ? "Type your answer and press Enter."
    : item.partial_credit ? "Partial credit: an answer close to the right one earns part of the points. Tap an answer, or press 1–4."
    : "Tap an answer, or press 1–4.";
  (numeric ? [] : item.options || []).forEach((option, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = option.text;
    b.dataset.choice = option.id;
    b.setAttribute("aria-label", `Answer ${i + 1}: ${option.text}`);
    b.addEventListener("click", () => answer(option.id));
    box.appendChild(b);
  });
  show("item");
  (numeric ? $("numeric-value") : box.firstChild)?.focus();
}

function renderResult(result) {
  // the score on the test's reporting scale, as the server computed it (policy.scale)
  $("score").textContent = String(result.scale_score);
  $("level").textContent = result.level ? `Level: ${result.level}` : "";
  $("score-detail").textContent =
    `± ${result.scale_se} points · ${result.items_answered} questions · stopped by ${result.stop_reason}`;
  $("result").dataset.theta = String(result.theta);
  show("result");
}

async function answer(choice) {
  const item = state.session.item;
  for (const b of $("options").children) b.disabled = true;
  const event = {
    schema_version: 2, event_id: uuid(), session_id: state.session.session_id,
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

$("again").addEventListener("click", () => show("start"));

document.addEventListener("keydown", (e) => {
  if ($("item").hidden || !$("numeric").hidden) return;
  const k = Number(e.key);
  if (k >= 1 && k <= 4) $("options").children[k - 1]?.click();
});
