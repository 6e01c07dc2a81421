"""``irtcat report``: the named questions answered locally, a self-contained HTML dashboard
(interactive plotly charts with plotly.js inlined: it opens without a network) and PNGs."""

from __future__ import annotations

import csv
import html
import json
import time
from pathlib import Path
from typing import Any

from .duck import connect, run, run_all
from .queries import description

MAX_TRAJECTORIES = 12
ITEM_VIEW_ITEMS = 8  # the most administered multiple-choice items get a distractor chart
HEALTH_LINK = "<p><a href=\"health.html\">The bank's health: reliability, item fit, flagged sessions</a></p>"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        if not rows:
            fh.write("")
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def build_report(history_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Run every named question on the exported history and write the dashboard and PNGs."""
    started = time.perf_counter()
    out = Path(out_dir)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    con = connect(history_dir)
    results = run_all(con)
    latest = results["latest_ability"]
    sessions = [r["session_id"] for r in sorted(latest, key=lambda r: r["theta"])]
    step = max(1, len(sessions) // MAX_TRAJECTORIES)
    trajectories = {sid: run(con, "session_trajectory", sid) for sid in sessions[::step][:MAX_TRAJECTORIES]}
    for name, rows in results.items():
        _write_csv(out / "queries" / f"{name}.csv", rows)
    pngs = _pngs(results, trajectories, out)
    health = json.loads((out / "health.json").read_text()) if (out / "health.json").exists() else None
    page = _dashboard(results, trajectories, health)
    (out / "dashboard.html").write_text(page, encoding="utf-8")
    records = con.execute("SELECT count(*) FROM history").fetchone()
    return {
        "dashboard": str((out / "dashboard.html").resolve()),
        "pngs": [str(p) for p in pngs],
        "queries": {name: len(rows) for name, rows in results.items()},
        "history_records": int(records[0]) if records else 0,
        "students": len(latest),
        "seconds": time.perf_counter() - started,
    }


def _pngs(results: dict[str, list[dict[str, Any]]], traj: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(9, 5))
    for sid, rows in traj.items():
        seq = [r["seq"] for r in rows if r["theta_after"] is not None]
        th = [r["theta_after"] for r in rows if r["theta_after"] is not None]
        se = [r["se_after"] for r in rows if r["theta_after"] is not None]
        line = ax.plot(seq, th, lw=1.2, label=sid[:8])[0]
        ax.fill_between(seq, [t - s for t, s in zip(th, se, strict=True)],
                        [t + s for t, s in zip(th, se, strict=True)], color=line.get_color(), alpha=0.12)
    ax.set(xlabel="item position", ylabel="theta (band: ±1 SE)", title="Ability over the test")
    paths.append(out / "trajectories.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist([r["theta"] for r in results["latest_ability"]], bins=20)
    ax.set(xlabel="latest theta", ylabel="students", title="Ability distribution")
    paths.append(out / "ability_distribution.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    stops = results["length_and_stop_reasons"]
    ax.bar([f"{r['test_id']}\n{r['stop_reason']}" for r in stops], [r["sessions"] for r in stops])
    ax.set(ylabel="sessions", title="Stop reasons")
    paths.append(out / "stop_reasons.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    exp = results["item_exposure"]
    ax.bar(range(len(exp)), [r["administrations"] for r in exp], width=1.0)
    ax.set(xlabel="items (most administered first)", ylabel="administrations", title="Item exposure")
    paths.append(out / "item_exposure.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def _number(value: Any) -> str:
    """A reported score as people read it ("-" where a record has none)."""
    return "-" if value is None else f"{float(value):g}"


def _distractor_figure(rows: list[dict[str, Any]], by_exposure: list[str]) -> Any:
    """The item view: for the most administered multiple-choice items, the share of each
    option by ability third (a good distractor draws the weak third, the key the strong)."""
    import plotly.graph_objects as go

    items = [i for i in by_exposure if any(r["item_id"] == i for r in rows)][:ITEM_VIEW_ITEMS]
    if not items:
        return None
    f = go.Figure()
    # an empty first trace lays out every (item, third) in order: a multi-category axis keeps
    # the order in which its categories first appear
    cells = sorted({(items.index(r["item_id"]), int(r["ability_third"])) for r in rows if r["item_id"] in items})
    f.add_trace(go.Bar(x=[[items[i] for i, _ in cells], [f"third {t}" for _, t in cells]], y=[0] * len(cells),
                       showlegend=False, hoverinfo="skip"))
    options = sorted({int(r["option"]) for r in rows if r["item_id"] in items})
    for option in options:
        picked = [r for r in rows if r["item_id"] in items and int(r["option"]) == option]
        f.add_trace(go.Bar(
            x=[[r["item_id"] for r in picked], [f"third {r['ability_third']}" for r in picked]],
            y=[r["share"] for r in picked], name=f"option {option + 1}",
            customdata=[["key" if r["scored_correct"] else "distractor", r["chosen"]] for r in picked],
            hovertemplate="option " + str(option + 1) + " (%{customdata[0]}): %{y:.0%} (%{customdata[1]} chose it)"))
    f.update_layout(barmode="stack", title="Item view: options chosen by ability third (bank order of the options)",
                    yaxis_title="share of the third", yaxis_tickformat=".0%")
    return f


def bank_view(health: dict[str, Any]) -> str:
    """The dashboard's bank view: per test its marginal reliability and the bound the bank
    allows, the items that misfit and the DIF flags, the flagged sessions; the health page has
    the detail (``health.json``, :mod:`irtcat.analytics.health`)."""
    def num(x: Any) -> str:
        return "-" if x is None or (isinstance(x, float) and x != x) else f"{x:.2f}"

    tests = "".join(f"<tr><td>{html.escape(str(t['test_id']))}</td><td>{t['sessions']}</td>"
                    f"<td>{num(t['empirical_reliability'])}</td><td>{num(t['information_reliability_bound'])}</td></tr>"
                    for t in health.get("tests", []))
    misfits = sum(1 for i in health.get("items", []) if i.get("flagged"))
    dif = [f"{html.escape(str(s['variable']))}: {sum(1 for i in s['items'] if i['flagged'])} of {len(s['items'])}"
           for s in health.get("dif", []) if "items" in s]
    return (f"<h2 id='bank'>The bank: {html.escape(str(health.get('bank_id')))} v{health.get('bank_version')}</h2>"
            "<table id='bank-tests'><tr><th>test</th><th>sessions</th><th>marginal reliability</th>"
            f"<th>bound from the bank</th></tr>{tests}</table>"
            f"<p>{misfits} item(s) misfitting · DIF flags: {'; '.join(dif) or 'no group variables'} · "
            f"{len(health.get('flagged_sessions', []))} session(s) flagged</p>{HEALTH_LINK}")


def _dashboard(results: dict[str, list[dict[str, Any]]], traj: dict[str, list[dict[str, Any]]],
               health: dict[str, Any] | None = None) -> str:
    import plotly.graph_objects as go

    figs: list[tuple[str, Any]] = []
    f = go.Figure()
    for sid, rows in traj.items():
        rows = [r for r in rows if r["theta_after"] is not None]
        seq = [r["seq"] for r in rows]
        th = [r["theta_after"] for r in rows]
        se = [r["se_after"] for r in rows]
        label = f"{rows[0]['student_id']} ({sid[:8]})" if rows else sid[:8]
        f.add_trace(go.Scatter(x=seq + seq[::-1], y=[t + s for t, s in zip(th, se, strict=True)]
                               + [t - s for t, s in zip(th, se, strict=True)][::-1],
                               fill="toself", opacity=0.15, line={"width": 0}, showlegend=False,
                               hoverinfo="skip", legendgroup=sid))
        f.add_trace(go.Scatter(x=seq, y=th, mode="lines+markers", name=label, legendgroup=sid,
                               customdata=se, hovertemplate="item %{x}: theta %{y:.2f} ± %{customdata:.2f}"))
    f.update_layout(title="Ability over the test (band: ±1 SE)", xaxis_title="item position",
                    yaxis_title="theta")
    figs.append(("trajectories", f))
    latest = results["latest_ability"]
    figs.append(("distribution", go.Figure(go.Histogram(x=[r["theta"] for r in latest], nbinsx=20))
                 .update_layout(title="Ability distribution (latest per student)", xaxis_title="theta",
                                yaxis_title="students")))
    stops = results["length_and_stop_reasons"]
    figs.append(("stops", go.Figure(go.Bar(x=[f"{r['test_id']} · {r['stop_reason']}" for r in stops],
                                           y=[r["sessions"] for r in stops],
                                           customdata=[r["mean_length"] for r in stops],
                                           hovertemplate="%{y} sessions, mean length %{customdata:.1f}"))
                 .update_layout(title="Stop reasons and test length", yaxis_title="sessions")))
    exp = results["item_exposure"]
    figs.append(("exposure", go.Figure(go.Bar(x=[r["item_id"] for r in exp], y=[r["administrations"] for r in exp]))
                 .update_layout(title="Item exposure", xaxis_title="item", yaxis_title="administrations")))
    distractors = _distractor_figure(results["distractor_analysis"], [r["item_id"] for r in exp])
    if distractors is not None:
        figs.append(("items", distractors))
    parts = []
    for k, (name, fig) in enumerate(figs):
        fig.update_layout(template="plotly_white", height=420, margin={"t": 50, "l": 50, "r": 20, "b": 50})
        parts.append(f'<section id="{name}">' + fig.to_html(full_html=False, include_plotlyjs=(k == 0),
                                                          div_id=f"chart-{name}") + "</section>")
    table = "".join(
        f"<tr><td>{html.escape(str(r['student_id']))}</td>"
        f"<td>{_number(r.get('scale_score'))} ± {_number(r.get('scale_se'))}</td>"
        f"<td>{html.escape(str(r.get('level') or ''))}</td><td>{r['theta']:.2f}</td><td>{r['se']:.2f}</td>"
        f"<td>{html.escape(str(r['test_id']))}</td><td>{html.escape(str(r['finished_at']))}</td></tr>"
        for r in latest)
    questions = "".join(f"<li><b>{n}</b>: {html.escape(description(n))} ({len(v)} rows)</li>"
                        for n, v in results.items())
    conformance = "".join(
        f"<tr><td>{html.escape(str(r['test_id']))}</td><td>{r['blueprint_version']}</td><td>{r['sessions']}</td>"
        f"<td>{r['sessions_meeting_every_rule']}</td><td>{r['sessions_with_relaxed_rules']}</td></tr>"
        for r in results["blueprint_conformance"])
    blueprints = ("<h2>Blueprint conformance</h2><table id=\"blueprints\"><tr><th>test</th><th>blueprint</th>"
                  "<th>sessions</th><th>met every rule</th><th>rules relaxed</th></tr>" + conformance + "</table>"
                  if conformance else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>irtcat dashboard</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}}
table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}</style>
</head><body>
<h1>irtcat: student ability</h1>
<p>{len(latest)} students · {sum(r['sessions'] for r in stops)} finished sessions ·
{sum(r['administrations'] for r in exp)} applied answers</p>
{bank_view(health) if health else ''}
{''.join(parts)}
{blueprints}
<h2>Students (latest ability)</h2>
<table id="students"><tr><th>student</th><th>score ± SE</th><th>level</th><th>theta</th><th>SE</th><th>test</th>
<th>finished</th></tr>{table}</table>
<h2>Questions answered</h2><ul>{questions}</ul>
</body></html>"""
