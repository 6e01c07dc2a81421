"""``irtcat report --health``: a bank's health from the exported history (docs/health.md).

Per test: the empirical marginal reliability of its finished sessions, the bound its bank's
information sets at the tests' median length, and the conditional SEM by band of theta. Per
item: responses, exposure (share of sessions that were given it), p-value, RMSD against the
bank (adaptive data: S-X2 does not apply). Per session: lz* at its final estimate and its
rapid guesses (NT10 against each item's typical time in this history) and response-time
effort; the flagged ones are listed. Per group variable the history carries (its ``groups/``
folder, beside ``history/``): Mantel-Haenszel DIF of every right/wrong item between the two
largest groups, matched on ability strata, with each item's DIF curves (proportion right of
both groups by ability band, beside the bank's curve). Written as ``health.json`` and
``health.html``.
"""

from __future__ import annotations

import gzip
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..domain.bank import ItemBank
from ..domain.health import bank_curves, dif_study, response_matrix
from ..irt.health.common import normal_grid
from ..irt.health.itemfit import item_fit, observed_curves
from ..irt.health.personfit import effort, lz_star, misfitting, rapid_thresholds
from ..irt.health.reliability import (
    best_test_information,
    conditional_sem,
    empirical_reliability,
    information_reliability,
)
from .duck import connect

BANDS = np.array([-np.inf, -2.0, -1.0, 0.0, 1.0, 2.0, np.inf])


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def build_health(history_dir: str | Path, bank: ItemBank, out_dir: str | Path) -> dict[str, Any]:
    """Compute the health report (module docstring) and write it under ``out_dir``."""
    con = connect(history_dir)
    answers = _rows(con, """
        SELECT session_id, student_id, test_id, item_id, response, response_time_ms
        FROM history WHERE record_type = 'answer' AND outcome = 'applied' AND scored AND response IS NOT NULL
        ORDER BY session_id, seq""")
    sessions = _rows(con, """
        SELECT session_id, test_id, theta_after AS theta, se_after AS se, items_answered, scale_score, scale_se
        FROM history WHERE record_type = 'session' AND outcome = 'finished'""")
    known = [a for a in answers if a["item_id"] in bank.engine.index]
    out: dict[str, Any] = {"bank_id": bank.bank_id, "bank_version": bank.version, "answers": len(known),
                           "sessions": len(sessions), "tests": _tests(sessions, bank), "items": [],
                           "flagged_sessions": [], "note": None}
    if known:
        out["items"], out["note"] = _items(known, sessions, bank)
        out["session_checks"], out["flagged_sessions"] = _sessions(known, sessions, bank)
        out["dif"] = _dif(Path(history_dir), known, bank)
    dest = Path(out_dir)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "health.json").write_text(json.dumps(out, default=str), encoding="utf-8")
    (dest / "health.html").write_text(_page(out), encoding="utf-8")
    out["html"] = str((dest / "health.html").resolve())
    return out


def _tests(sessions: list[dict[str, Any]], bank: ItemBank) -> list[dict[str, Any]]:
    grid, _ = normal_grid(121, 6.0)
    item_info = bank.engine.information(grid)[:, bank.engine.operational]
    out = []
    for test in sorted({s["test_id"] for s in sessions}):
        rows = [s for s in sessions if s["test_id"] == test and s["theta"] is not None and s["se"] is not None]
        theta = np.array([s["theta"] for s in rows], float)
        se = np.array([s["se"] for s in rows], float)
        length = int(np.median([s["items_answered"] or 0 for s in rows])) if rows else 0
        bound = information_reliability(best_test_information(item_info, length), grid) if length else float("nan")
        out.append({"test_id": test, "sessions": len(rows), "median_length": length,
                    "empirical_reliability": empirical_reliability(theta, se),
                    "information_reliability_bound": bound,
                    "csem": [{"from": lo, "to": hi, "sessions": n, "sem": sem}
                             for lo, hi, n, sem in conditional_sem(theta, se, BANDS)],
                    "csem_scale": _scale_csem(rows)})
    return out


def _scale_csem(rows: list[dict[str, Any]], bands: int = 5) -> list[dict[str, Any]]:
    """The conditional SEM on the reporting scale: the root mean squared scale SE of the
    sessions in each of ``bands`` equal-count bands of scale score."""
    scored = [(s["scale_score"], s["scale_se"]) for s in rows if s.get("scale_score") is not None
              and s.get("scale_se") is not None]
    if len(scored) < bands:
        return []
    score = np.array([x for x, _ in scored], float)
    edges = np.unique(np.quantile(score, np.linspace(0, 1, bands + 1)))
    edges[-1] = np.nextafter(edges[-1], np.inf)  # the top score falls inside the last band
    return [{"from": lo, "to": hi, "sessions": n, "sem": sem}
            for lo, hi, n, sem in conditional_sem(score, np.array([y for _, y in scored], float), edges)]


def _items(answers: list[dict[str, Any]], sessions: list[dict[str, Any]], bank: ItemBank
           ) -> tuple[list[dict[str, Any]], str | None]:
    people, positions, matrix = response_matrix([a["session_id"] for a in answers], [a["item_id"] for a in answers],
                                                np.array([a["response"] for a in answers], dtype=np.int64), bank)
    grid, w = normal_grid()
    curves = bank_curves(bank, positions, grid)
    fits, note = item_fit(matrix, curves, w)
    observed = observed_curves(matrix, curves, w)
    n_sessions = max(len(people), 1)
    out = []
    for k, (j, fit) in enumerate(zip(positions, fits, strict=True)):
        seen = matrix[:, k] >= 0
        row: dict[str, Any] = {"item_id": bank.items[j].item_id, "responses": int(seen.sum()),
                               "exposure": float(seen.sum() / n_sessions), "mean_score": float(matrix[seen, k].mean()),
                               "rmsd": fit.rmsd, "s_x2": None if np.isnan(fit.s_x2) else fit.s_x2,
                               "flagged": fit.flagged}
        curve = observed[k]
        if curve is not None:  # expected score by theta: the model's, and the one the answers imply
            obs, mass = curve
            keep = mass > 0.002
            score = np.arange(curves.probs[k].shape[1])
            row["curve"] = {"theta": grid[keep].round(3).tolist(), "model": (curves.probs[k][keep] @ score).round(4)
                            .tolist(), "observed": (obs[keep] @ score).round(4).tolist()}
        out.append(row)
    return out, note


# the smallest group a DIF study here compares (sessions): below it MH has too few people per stratum
MIN_GROUP_SESSIONS = 10


def read_groups_folder(history_dir: Path) -> dict[str, dict[str, str]]:
    """Each session's reported group variables, from ``DIR/groups/dt=*/*`` (JSON lines, gzip or
    plain; the layout the history's ``groups/`` prefix has)."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted((history_dir / "groups").glob("dt=*/*")):
        body = path.read_bytes()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        for line in body.decode("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["session_id"]] = json.loads(rec.get("groups") or "{}")
    return out


def _dif(history_dir: Path, answers: list[dict[str, Any]], bank: ItemBank) -> list[dict[str, Any]]:
    groups = read_groups_folder(history_dir)
    if not groups:
        return []
    people, positions, matrix = response_matrix([a["session_id"] for a in answers], [a["item_id"] for a in answers],
                                                np.array([a["response"] for a in answers], dtype=np.int64), bank)
    studies = []
    for variable in sorted({v for g in groups.values() for v in g}):
        values = {s: g[variable] for s, g in groups.items() if variable in g}
        counts = sorted(((n, v) for v in set(values.values())
                         if (n := sum(1 for x in values.values() if x == v)) >= MIN_GROUP_SESSIONS), reverse=True)
        if len(counts) < 2:
            studies.append({"variable": variable, "note": f"fewer than two groups of {MIN_GROUP_SESSIONS} sessions"})
            continue
        (_, reference), (_, focal) = counts[0], counts[1]
        n = counts[0][0] + counts[1][0]
        try:
            study = dif_study(bank, people, positions, matrix, values, focal, reference,
                              strata=max(2, min(20, n // 50)), likelihood_ratio=False)
        except ValueError as exc:
            studies.append({"variable": variable, "note": str(exc)})
            continue
        studies.append({"variable": variable, **study})
    return studies


def _dif_svg(curve: dict[str, list[Any]]) -> str:
    """Proportion right of the focal (orange) and reference (blue) groups by ability band, and
    the bank's curve (grey line)."""
    w, h, pad = 260, 120, 6
    theta: list[float] = [float(t) for t in curve["theta"]]
    lo, hi = min(theta), max(theta)

    def x(t: float) -> float:
        return pad + (t - lo) / max(hi - lo, 1e-9) * (w - 2 * pad)

    def y(v: float) -> float:
        return h - pad - v * (h - 2 * pad)

    def series(name: str, colour: str) -> str:
        pts = [(t, v) for t, v in zip(theta, curve[name], strict=True) if v is not None]
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        return f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='2'/>" + "".join(
            f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='2.5' fill='{colour}'/>" for t, v in pts)

    return (f"<svg viewBox='0 0 {w} {h}' width='{w}' height='{h}' role='img'><title>proportion right by ability: "
            f"focal (orange), reference (blue), model (grey)</title>{series('model', '#999')}"
            f"{series('reference', '#2b59c3')}{series('focal', '#e67e22')}</svg>")


def _svg(curve: dict[str, list[float]], top: float) -> str:
    """The model's expected-score curve (line) and the observed one (dots) of one item."""
    w, h, pad = 260, 120, 6
    theta = curve["theta"]
    lo, hi = min(theta), max(theta)

    def x(t: float) -> float:
        return pad + (t - lo) / max(hi - lo, 1e-9) * (w - 2 * pad)

    def y(v: float) -> float:
        return h - pad - v / max(top, 1e-9) * (h - 2 * pad)

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(theta, curve["model"], strict=True))
    dots = "".join(f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='2' fill='#c0392b'/>"
                   for t, v in zip(theta, curve["observed"], strict=True))
    return (f"<svg viewBox='0 0 {w} {h}' width='{w}' height='{h}' role='img'><title>expected score: model "
            f"(line) and observed (dots), theta {lo:.1f} to {hi:.1f}</title><polyline points='{line}' fill='none' "
            f"stroke='#2b59c3' stroke-width='2'/>{dots}</svg>")


def _sessions(answers: list[dict[str, Any]], sessions: list[dict[str, Any]], bank: ItemBank
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    engine = bank.engine
    log_seconds: dict[str, list[float]] = {}
    for a in answers:
        if a["response_time_ms"]:
            log_seconds.setdefault(a["item_id"], []).append(float(np.log(a["response_time_ms"] / 1000.0)))
    typical = {i: float(np.mean(v)) for i, v in log_seconds.items()}
    by_session: dict[str, list[dict[str, Any]]] = {}
    for a in answers:
        by_session.setdefault(a["session_id"], []).append(a)
    final = {s["session_id"]: s for s in sessions}
    flagged, checked = [], 0
    for sid, rows in by_session.items():
        session = final.get(sid)
        if session is None or session["theta"] is None:
            continue  # not finished: judged when it is
        checked += 1
        reasons = []
        idx = np.array([engine.index[r["item_id"]] for r in rows])
        rw = np.array([bank.items[j].model is None for j in idx])
        if rw.sum() >= 5:
            x = np.array([r["response"] for r in rows])[rw]
            lz = lz_star(x, engine.params.subset(idx[rw]), float(session["theta"]), (0.0, 1.0))
            if misfitting(lz):
                reasons.append(f"lz* {lz:.2f}")
        timed = [r for r in rows if r["response_time_ms"] and r["item_id"] in typical]
        if timed:
            seconds = np.array([r["response_time_ms"] / 1000.0 for r in timed])
            thresholds = rapid_thresholds(np.array([typical[r["item_id"]] for r in timed]))
            rapid, rte, low = effort(seconds, thresholds)
            if low:
                reasons.append(f"response-time effort {rte:.2f} ({int(rapid.sum())} rapid guesses)")
        if reasons:
            flagged.append({"session_id": sid, "student_id": rows[0]["student_id"], "test_id": rows[0]["test_id"],
                            "reasons": reasons})
    return {"checked": checked, "flagged": len(flagged)}, flagged


def _size(item: dict[str, Any]) -> str:
    """An item's DIF size: MH delta, or a partial-credit item's SMD."""
    if item.get("mh_delta") is not None:
        return f"MH delta {item['mh_delta']:.3f}"
    return f"SMD {item['smd']:.3f}" if item.get("smd") is not None else "-"


def _bands(csem: list[dict[str, Any]]) -> str:
    return "; ".join(f"{b['from']:.0f}-{b['to']:.0f}: {b['sem']:.1f}" for b in csem)


def _page(report: dict[str, Any]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "-" if np.isnan(v) else f"{v:.3f}"
        return html.escape(str(v))

    tests = "".join(f"<tr><td>{cell(t['test_id'])}</td><td>{t['sessions']}</td><td>{t['median_length']}</td>"
                    f"<td>{cell(t['empirical_reliability'])}</td><td>{cell(t['information_reliability_bound'])}</td>"
                    f"<td>{_bands(t['csem_scale'])}</td></tr>" for t in report["tests"])
    items = "".join(f"<tr><td>{cell(i['item_id'])}</td><td>{i['responses']}</td><td>{cell(i['exposure'])}</td>"
                    f"<td>{cell(i['mean_score'])}</td><td>{cell(i['rmsd'])}</td></tr>"
                    for i in sorted(report["items"], key=lambda i: -i["rmsd"]))
    flagged = "".join(f"<tr><td>{cell(s['session_id'])}</td><td>{cell(s['student_id'])}</td>"
                      f"<td>{cell('; '.join(s['reasons']))}</td></tr>" for s in report["flagged_sessions"])
    note = f"<p>{html.escape(report['note'])}</p>" if report.get("note") else ""
    worst = [i for i in sorted(report["items"], key=lambda i: -i["rmsd"]) if "curve" in i][:4]
    plots = "".join(f"<figure><figcaption>{cell(i['item_id'])} (RMSD {cell(i['rmsd'])})</figcaption>"
                    f"{_svg(i['curve'], max(max(i['curve']['model']), max(i['curve']['observed']), 1.0))}</figure>"
                    for i in worst)
    dif = ""
    for study in report.get("dif", []):
        if "items" not in study:
            dif += f"<h3>{cell(study['variable'])}</h3><p>{cell(study['note'])}</p>"
            continue
        ranked = sorted(study["items"], key=lambda i: (not i["flagged"], -abs(i["mh_delta"] or 0),
                                                       -abs(i.get("effect_size") or 0)))
        rows = "".join(f"<tr><td>{cell(i['item_id'])}</td><td>{_size(i)}</td>"
                       f"<td>{cell(i['ets_class'] or '-')}</td><td>{cell(i.get('mh_p', i.get('mantel_p')))}</td>"
                       f"<td>{'yes' if i['flagged'] else ''}</td></tr>" for i in ranked)
        figures = "".join(f"<figure><figcaption>{cell(i['item_id'])} ({_size(i)}, "
                          f"ETS {cell(i['ets_class'] or '-')})</figcaption>{_dif_svg(i['curve'])}</figure>"
                          for i in ranked[:4] if i["curve"]["theta"])
        dif += (f"<h3>{cell(study['variable'])}: {cell(study['focal'])} ({study['focal_n']}) against "
                f"{cell(study['reference'])} ({study['reference_n']}), matched on {cell(study['matching'])}</h3>"
                f"{figures}<table><tr><th>item</th><th>MH delta (partial credit: SMD)</th><th>ETS</th><th>p</th>"
                f"<th>flagged</th></tr>"
                f"{rows}</table>")
    title = f"Bank health: {cell(report['bank_id'])}"
    return (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{title}</title>"
            f"<h1>Bank health: {cell(report['bank_id'])} v{report['bank_version']}</h1>"
            f"<h2>Tests</h2><table><tr><th>test</th><th>sessions</th><th>median length</th>"
            f"<th>marginal reliability</th><th>bound from the bank's information</th>"
            f"<th>SEM by scale-score band</th></tr>{tests}</table>"
            f"<h2>Items (by RMSD)</h2>{note}"
            f"<h3>The largest misfits: observed and model curves</h3>{plots}"
            f"<table><tr><th>item</th><th>responses</th><th>exposure</th>"
            f"<th>mean score</th><th>RMSD</th></tr>{items}</table>"
            f"<h2>Flagged sessions</h2><table><tr><th>session</th><th>student</th><th>why</th></tr>{flagged}</table>"
            f"<h2>Differential item functioning</h2>{dif or '<p>No group variables in this history.</p>'}"
            "</html>")
