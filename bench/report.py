#!/usr/bin/env python3
"""Turns the benchmark records (JSONL, one row each) into bench/results/latest.md and its JSON twin.

A record: bench, table, param, unit, lower_is_better, pilus [samples], baseline [samples],
baseline_name, note, optionally floor [samples]. Ratios compare medians measured in the same run.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import time


def summary(samples):
    """min/median/max of the valid samples; NaN marks a run that failed (it is counted)."""
    good = [s for s in samples if isinstance(s, (int, float)) and not math.isnan(s)]
    if not samples:
        return None
    if not good:
        return {"n": 0, "failed": len(samples), "min": None, "median": None, "max": None}
    return {"n": len(good), "failed": len(samples) - len(good), "min": min(good),
            "median": statistics.median(good), "max": max(good)}


def ratio(a, b):
    if not a or not b or a["median"] is None or not b["median"]:
        return None
    return a["median"] / b["median"]


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def fmt_stats(s):
    if s is None:
        return "n/a"
    failed = f", {s['failed']} failed" if s["failed"] else ""
    if s["median"] is None:
        return f"failed ({s['failed']})"
    return f"{fmt(s['median'])} ({fmt(s['min'])}..{fmt(s['max'])}{failed})"


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        debian = open("/etc/debian_version").read().strip()
    except OSError:
        debian = "?"
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "debian": debian,
        "load_average_at_end": os.getloadavg(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--wall-seconds", type=float, default=0)
    ap.add_argument("--failed", default="", help="benchmarks that failed, comma separated")
    args = ap.parse_args()

    rows = []
    with open(args.records) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))

    tables = {}
    for r in rows:
        pilus, base, floor = summary(r["pilus"]), summary(r["baseline"]), summary(r.get("floor", []))
        row = {
            "param": r["param"],
            "unit": r["unit"],
            "lower_is_better": r["lower_is_better"],
            "pilus": pilus,
            "baseline": base,
            "baseline_name": r["baseline_name"],
            "ratio_pilus_to_baseline": ratio(pilus, base),
            "note": r.get("note", ""),
        }
        if floor:
            row["floor"] = floor
            row["ratio_pilus_to_floor"] = ratio(pilus, floor)
            row["ratio_baseline_to_floor"] = ratio(base, floor)
        tables.setdefault(r["table"], {"bench": r["bench"], "rows": []})["rows"].append(row)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "form": "quick" if args.quick else "full",
        "wall_seconds": round(args.wall_seconds, 1),
        "commit": commit,
        "machine": machine(),
        "failed": [x for x in args.failed.split(",") if x],
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "latest.json"), "w") as f:
        json.dump({"meta": meta, "tables": tables}, f, indent=2)

    m = meta["machine"]
    out = [
        f"# pilus benchmarks ({meta['form']} form)",
        "",
        f"{meta['generated']}, commit {commit}, {meta['wall_seconds']} s wall. Machine: {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}, Debian {m['debian']}; "
        f"load average at the end {', '.join(f'{x:.1f}' for x in m['load_average_at_end'])} "
        "(shared machine: compare ratios, not absolute numbers).",
        "",
        "Each cell: median (min..max) over the repetitions; ratio = pilus median / baseline median.",
        "",
    ]
    if meta["failed"]:
        out += [f"**Failed or timed out:** {', '.join(meta['failed'])} (see the run's log).", ""]
    for title, t in tables.items():
        rows = t["rows"]
        unit = rows[0]["unit"]
        better = "lower is better" if rows[0]["lower_is_better"] else "higher is better"
        has_floor = any("floor" in r for r in rows)
        out.append(f"## {title}")
        out.append("")
        out.append(f"Unit: {unit} ({better}). Baseline: {rows[0]['baseline_name']}.")
        notes = sorted({r["note"] for r in rows if r["note"]})
        for n in notes:
            out.append(f"{n}.")
        out.append("")
        head = ["parameter", "pilus", "baseline", "pilus/baseline"]
        if has_floor:
            head += ["floor", "pilus/floor", "baseline/floor"]
        head.append("reps")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for r in rows:
            cells = [r["param"], fmt_stats(r["pilus"]), fmt_stats(r["baseline"]),
                     fmt(r["ratio_pilus_to_baseline"])]
            if has_floor:
                cells += [fmt_stats(r.get("floor")), fmt(r.get("ratio_pilus_to_floor")),
                          fmt(r.get("ratio_baseline_to_floor"))]
            n = [s["n"] for s in (r["pilus"], r["baseline"]) if s]
            cells.append("/".join(str(x) for x in n))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    with open(os.path.join(args.out_dir, "latest.md"), "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
