#!/usr/bin/env python3
"""Re-renders the Markdown results table from a `sluice bench` results.json (same layout as
the command's stdout; ratios recomputed: baseline/sluice for times and memory, sluice/baseline
for rates; a lower bound "> N×" only where a baseline's cold start hit the timeout)."""
import json, sys

KEYS = ["coldStart", "endpointChange", "serviceAdd", "serviceDelete", "scaleUp", "scaleDown", "churn", "memory", "compileThroughput", "connRate"]
TITLES = {"coldStart": "cold start", "endpointChange": "endpoint change p50 / p99 / max", "serviceAdd": "service add p50 / p99 / max",
          "serviceDelete": "service delete p50 / p99 / max", "scaleUp": "scale up (n→n+1) p50 / p99 / max",
          "scaleDown": "scale down (n+1→n) p50 / p99 / max", "churn": "sustained churn (changes/s)", "memory": "peak RSS",
          "compileThroughput": "compile throughput (endpoints/s, no kernel)", "connRate": "new connections (conn/s, after cold start)"}
HIGHER = {"churn", "compileThroughput", "connRate"}

def sec(s):
    if s < 1e-3: return f"{s*1e6:.0f} µs"
    if s < 1: return f"{s*1e3:.2f} ms" if s < 0.01 else f"{s*1e3:.1f} ms"
    return f"{s:.2f} s"

def rate(r, unit):
    u = "/s" if unit.endswith("/s") else ""
    if r >= 1e6: return f"{r/1e6:.2f}M{u}"
    if r >= 1e3: return f"{r/1e3:.1f}k{u}"
    return f"{r:.0f}{u}"

def value(m):
    if m is None: return "–"
    st = m["status"]
    if st == "timeout":
        t = (m.get("detail") or {}).get("timeoutSeconds")
        note = m.get("note") or ""
        if "could not be loaded" in note or "not loaded" in note: return "not loaded in time"
        return f"> timeout ({sec(t)})" if t else "> timeout"
    if st != "ok": return st
    v = m.get("value")
    if v is None: return "–"
    u = m["unit"]
    if u == "s":
        s = m.get("summary")
        if s and s["n"] > 1:
            star = "*" if m.get("note") else ""
            return f"{sec(s['p50'])} / {sec(s['p99'])} / {sec(s['max'])} (n={s['n']}{star})"
        return sec(v)
    if u == "bytes": return f"{v/1e6:.0f} MB"
    if u == "conn/s":
        a = (m.get("detail") or {}).get("afterUpdatesConnPerSec")
        return rate(v, u) + (f" (after updates: {rate(a, u)})" if a else "")
    return rate(v, u)

def ratio(k, s, b):
    if not s or s["status"] != "ok" or not s.get("value") or not b: return ""
    sv = s["value"]
    if b["status"] == "ok" and b.get("value"):
        r = b["value"] / sv if k not in HIGHER else sv / b["value"]
        lb = ""
    elif b["status"] == "timeout" and k == "coldStart" and (b.get("detail") or {}).get("timeoutSeconds"):
        r = b["detail"]["timeoutSeconds"] / sv
        lb = "> "
    else:
        return ""
    return f"{lb}{r:.0f}×" if r >= 100 else f"{lb}{r:.2f}×"

def main(path):
    d = json.load(open(path))
    out = []
    for sc in d["scales"]:
        s, e = sc["scale"]["services"], sc["scale"]["endpoints"]
        name = (f"{s//1000}k" if s >= 1000 and s % 1000 == 0 else str(s)) + f"×{e}"
        res = {r["implementation"]: r for r in sc["results"]}
        impls = [r["implementation"] for r in sc["results"]]
        out.append(f"#### {name} ({s} services × {e} endpoints)\n")
        hdr = "| metric | sluice |" + "".join(f" {b} | sluice advantage |" for b in impls if b != "sluice")
        out.append(hdr)
        out.append("|---|---|" + "---|---|" * (len(impls) - 1))
        for k in KEYS:
            sm = res["sluice"]["metrics"].get(k)
            row = f"| {TITLES[k]} | {value(sm)} |"
            for b in impls:
                if b == "sluice": continue
                bm = res[b]["metrics"].get(k)
                row += f" {value(bm)} | {ratio(k, sm, bm)} |"
            out.append(row)
        notes = [f"{r['implementation']}: {n}" for r in sc["results"] for n in r.get("notes", [])]
        if notes: out.append("\n" + "\n".join(f"- {n}" for n in notes))
        out.append("")
    print("\n".join(out))

if __name__ == "__main__":
    main(sys.argv[1])
