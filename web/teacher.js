// Teacher view: a test's recent sessions, each with its theta trajectory (±1 SE band) as SVG.
"use strict";

const NS = "http://www.w3.org/2000/svg";

// why a finished session may not have been answered in earnest, in the teacher's words
const FLAG_WORDS = {
  effort: (s) => `answered too fast (effort ${s.effort})`,
  person_fit: (s) => `unusual answer pattern (lz* ${s.person_fit})`,
};

function check(s) {
  return (s.flags || []).map((f) => (FLAG_WORDS[f] ? FLAG_WORDS[f](s) : f)).join("; ");
}

function chart(points) {
  const w = 220, h = 60, pad = 4;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  svg.classList.add("trajectory");
  if (!points.length) return svg;
  const lo = -3, hi = 3;
  const x = (i) => pad + (i / Math.max(1, points.length - 1)) * (w - 2 * pad);
  const y = (t) => h - pad - ((Math.max(lo, Math.min(hi, t)) - lo) / (hi - lo)) * (h - 2 * pad);
  const upper = points.map((p, i) => `${x(i)},${y(p.theta + p.se)}`);
  const lower = points.map((p, i) => `${x(i)},${y(p.theta - p.se)}`).reverse();
  const band = document.createElementNS(NS, "polygon");
  band.setAttribute("points", [...upper, ...lower].join(" "));
  band.setAttribute("fill", "rgba(43,89,195,0.18)");
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points.map((p, i) => `${x(i)},${y(p.theta)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2b59c3");
  line.setAttribute("stroke-width", "2");
  const title = document.createElementNS(NS, "title");
  title.textContent = points.map((p) => `${p.seq}: ${p.theta.toFixed(2)}`).join(", ");
  svg.append(title, band, line);
  return svg;
}

async function load(test) {
  const rows = await Auth.api("GET", `/tests/${encodeURIComponent(test)}/sessions`);
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren();
  for (const s of rows) {
    const tr = document.createElement("tr");
    for (const text of [s.student_id, s.status, String(s.answered), `${s.scale_score} ± ${s.scale_se}`,
                        s.level || "", `${s.theta.toFixed(2)} ± ${s.se.toFixed(2)}`, check(s),
                        (s.accommodations || "").replaceAll(";", ", ")]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.appendChild(chart(s.trajectory));
    tr.appendChild(td);
    body.appendChild(tr);
  }
  if (!rows.length) document.getElementById("error").textContent = "No sessions for this test yet.";
}

document.getElementById("test-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  document.getElementById("error").textContent = "";
  try {
    if (!Auth.signedIn()) {
      await Auth.signIn(document.getElementById("teacher").value.trim(), document.getElementById("password").value);
      document.getElementById("password").value = "";
    }
    await load(document.getElementById("test").value.trim());
  }
  catch (err) { document.getElementById("error").textContent = `Could not load sessions: ${err.message}`; }
});

// accommodations: a teacher sets a student's for one test (or every test); sessions started
// afterwards take them (extended time scales the time limit)
document.getElementById("acc-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const out = document.getElementById("acc-result");
  const student = document.getElementById("acc-student").value.trim();
  try {
    if (!Auth.signedIn()) throw new Error("sign in first (Show sessions)");
    const body = {
      test_id: document.getElementById("acc-test").value.trim() || "*",
      extended_time: Number(document.getElementById("acc-time").value || "1"),
      text_to_speech: document.getElementById("acc-tts").checked,
      large_font: document.getElementById("acc-font").checked,
    };
    const view = await Auth.api("PUT", `/students/${encodeURIComponent(student)}/accommodations`, body);
    const set = Object.entries(view.accommodations).map(([t, a]) => `${t === "*" ? "every test" : t}: ${JSON.stringify(a)}`);
    out.textContent = set.length ? `${student} — ${set.join("; ")}` : `${student} has no accommodations`;
  } catch (err) { out.textContent = `Could not save: ${err.message}`; }
});
