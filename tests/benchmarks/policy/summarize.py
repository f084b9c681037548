#!/usr/bin/env python3
"""Summarises policy_benchmark CSV rows into the markdown tables of
docs/benchmarks.md ("## Policy") and an SVG bar chart (no third-party
packages: the CI image has none).

usage: summarize.py RESULTS.csv [PLOT.svg]
"""
import csv
import math
import sys
from collections import defaultdict

METHODS = ["rl", "scratch", "anneal", "random", "constructive", "exact", "auto"]
LABEL = {"rl": "pre-trained + fine-tuned", "scratch": "policy from scratch",
         "anneal": "sim. annealing", "random": "random search",
         "constructive": "constructive", "exact": "exact search",
         "auto": "auto"}
HARD = {"dlrm_criteo", "moe_e8", "unet"}
COLOR = {"rl": "#1f77b4", "scratch": "#aec7e8", "anneal": "#ff7f0e",
         "random": "#2ca02c", "constructive": "#7f7f7f", "exact": "#9467bd",
         "auto": "#8c564b"}


def load(path):
    runs = []
    with open(path) as f:
        for row in csv.reader(f):
            if len(row) < 8 or row[0].startswith("#"):
                continue
            trace = []
            for item in row[7].split(";"):
                if ":" in item:
                    t, q = item.split(":")
                    trace.append((float(t), float(q)))
            bound = row[9] if len(row) > 9 and row[9] else ""
            runs.append(dict(case=row[0], method=row[1], budget=float(row[2]),
                             seed=int(row[3]), quality=float(row[4]),
                             throughput=float(row[5]), samples=int(row[6]),
                             trace=trace, error=row[8] if len(row) > 8 else "",
                             bound=float(bound) if bound else None))
    return runs


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def first_time(trace, q):
    for t, x in trace:
        if x >= q - 1e-5:  # traces are printed to 5 decimals
            return t
    return None


def main():
    runs = load(sys.argv[1])
    proofs = [r for r in runs if r["method"] == "proof"]
    runs = [r for r in runs if r["method"] != "proof"]
    if proofs:
        print(f"\n**Proved infeasible** ({len(proofs)} cases; every method "
              "answers with the proof at once)\n")
        print("| graph/hardware | proof |")
        print("|---|---|")
        for r in proofs:
            msg = r["error"].replace("FAILED_PRECONDITION: ", "")
            print(f"| {r['case']} | {msg[:160]}{'...' if len(msg) > 160 else ''} |")
    by = defaultdict(list)
    cases, budgets = [], sorted({r["budget"] for r in runs})
    for r in runs:
        by[(r["case"], r["budget"], r["method"])].append(r)
        if r["case"] not in cases:
            cases.append(r["case"])
    methods = [m for m in METHODS if any(k[2] == m for k in by)]
    for b in budgets:
        print(f"\n**Budget {b:g} s** — mean quality over seeds (in brackets: best throughput in samples/s over the seeds)\n")
        print("| graph/hardware | " + " | ".join(LABEL[m] for m in methods) +
              " | proved bound | first valid (s) |")
        print("|---|" + "---|" * (len(methods) + 2))
        for c in cases:
            if not any(by.get((c, b, m)) for m in methods):
                continue  # not run at this budget
            cells = []
            bounds = [r["bound"] for m in methods for r in by.get((c, b, m), [])
                      if r["bound"] is not None]
            firsts = [r["trace"][0][0] for m in methods
                      for r in by.get((c, b, m), []) if r["trace"]]
            for m in methods:
                rs = by.get((c, b, m), [])
                if not rs:
                    cells.append("n/a")
                    continue
                q = sum(r["quality"] for r in rs) / len(rs)
                best = max(r["throughput"] for r in rs)
                cells.append(f"{q:.3f} ({best:,.0f})")
            cells.append(f"{min(bounds):.3f}" if bounds else "")
            cells.append(f"{min(firsts):.3f}" if firsts else "none")
            print(f"| {c} | " + " | ".join(cells) + " |")
        print()
        # Geomean throughput ratio of rl over each baseline.
        for base in [m for m in methods if m != "rl"]:
            ratios = []
            for c in cases:
                a, o = by.get((c, b, "rl")), by.get((c, b, base))
                if a and o:
                    ta = sum(r["throughput"] for r in a) / len(a)
                    to = sum(r["throughput"] for r in o) / len(o)
                    if ta > 0 and to > 0:
                        ratios.append(ta / to)
            if ratios:
                print(f"- rl / {base} geomean mean-throughput ratio at {b:g} s: "
                      f"{geomean(ratios):.3f} over {len(ratios)} graphs")
            hard = []
            for c in cases:
                if c.split("/")[0] not in HARD:
                    continue
                a, o = by.get((c, b, "rl")), by.get((c, b, base))
                if a and o:
                    ta = sum(r["throughput"] for r in a) / len(a)
                    to = sum(r["throughput"] for r in o) / len(o)
                    if ta > 0 and to > 0:
                        hard.append((ta / to, c))
            if hard:
                worst = min(hard)
                print(f"  - on the hard graphs ({', '.join(sorted(HARD))}): "
                      f"{geomean([r for r, _ in hard]):.3f} over {len(hard)} "
                      f"cases, lowest {worst[0]:.3f} ({worst[1]})")
    # Fine-tuning speed-up at the largest budget.
    b = budgets[-1]
    print(f"\n**Fine-tuning speed-up ({b:g} s runs)**: time for the policy from "
          "scratch to reach its final quality, over the time the pre-trained "
          "policy needs to reach that quality.\n")
    print("| graph/hardware | seed | scratch final q | scratch t (s) | pre-trained t (s) | speed-up |")
    print("|---|---|---|---|---|---|")
    ups = []
    for c in cases:
        for s in sorted({r["seed"] for r in by.get((c, b, "scratch"), [])}):
            sc = [r for r in by[(c, b, "scratch")] if r["seed"] == s][0]
            rl = [r for r in by.get((c, b, "rl"), []) if r["seed"] == s]
            if not rl or sc["quality"] <= 0:
                continue
            ts = first_time(sc["trace"], sc["quality"])
            tr = first_time(rl[0]["trace"], sc["quality"])
            if ts is None:
                continue
            if tr is None:
                print(f"| {c} | {s} | {sc['quality']:.3f} | {ts:.2f} | not reached | - |")
                continue
            up = ts / max(tr, 1e-3)
            ups.append(up)
            print(f"| {c} | {s} | {sc['quality']:.3f} | {ts:.2f} | {tr:.2f} | {up:.1f}x |")
    if ups:
        print(f"\ngeomean speed-up {geomean(ups):.1f}x over {len(ups)} runs "
              f"(runs where the pre-trained policy never reached are not in it)")
    if len(sys.argv) > 2:
        svg(sys.argv[2], cases, budgets, methods, by)


def svg(path, cases, budgets, methods, by):
    w_group, w_bar, h, top, left = 20 + 14 * len(methods), 14, 220, 30, 50
    legend = 200  # a column of its own right of the bars: it never covers one
    plot_right = left + len(budgets) * (len(cases) * w_group + 40)
    width = plot_right + legend
    height = top + h + 150
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="18" font-size="13">Mean quality (throughput / upper bound) '
           'per graph, equal wall-clock budgets</text>']
    for i in range(0, 11, 2):
        y = top + h - h * i / 10
        out.append(f'<line x1="{left}" x2="{plot_right}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 30}" y="{y + 4}">{i / 10:.1f}</text>')
    x = left + 10
    for b in budgets:
        out.append(f'<text x="{x}" y="{top + h + 140}" font-size="12">budget {b:g} s</text>')
        for c in cases:
            for j, m in enumerate(methods):
                rs = by.get((c, b, m), [])
                if rs:
                    q = sum(r["quality"] for r in rs) / len(rs)
                    y = top + h - h * q
                    out.append(f'<rect x="{x + j * w_bar}" y="{y:.1f}" width="{w_bar - 2}" '
                               f'height="{h * q:.1f}" fill="{COLOR[m]}"/>')
            out.append(f'<text transform="translate({x + 4},{top + h + 8}) rotate(60)">{c}</text>')
            x += w_group
        x += 40
    for j, m in enumerate(methods):
        out.append(f'<rect x="{width - 190}" y="{top + 10 + 16 * j}" width="10" height="10" '
                   f'fill="{COLOR[m]}"/><text x="{width - 175}" y="{top + 19 + 16 * j}">{LABEL[m]}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
