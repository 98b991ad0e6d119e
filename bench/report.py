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
    ap.add_argument("records", help="this run's records (JSONL)")
    ap.add_argument("--out-dir", help="where latest.md and latest.json go (required with records)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--wall-seconds", type=float, default=0)
    ap.add_argument("--failed", default="", help="benchmarks that failed, comma separated")
    ap.add_argument("--previous", help="records of an earlier run: rows of benchmarks this run did not run "
                    "are taken from it (and marked so)")
    ap.add_argument("--readme", help="README to rewrite between its bench-table markers")
    args = ap.parse_args()

    if args.records.endswith(".json"):  # a written latest.json: only the README table, as it was measured
        if not args.readme:
            raise SystemExit("a .json input only rewrites the README: give --readme")
        with open(args.records) as f:
            done = json.load(f)
        write_readme_table(args.readme, done["meta"], done["tables"])
        return
    if not args.out_dir:
        raise SystemExit("--out-dir is required")
    rows = read_records(args.records)
    previous_benches = []
    if args.previous:
        ran = {r["bench"] for r in rows}
        kept = [dict(r, previous=True) for r in read_records(args.previous) if r["bench"] not in ran]
        previous_benches = sorted({r["bench"] for r in kept})
        rows = kept + rows

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
        if r.get("previous"):
            row["previous_run"] = True
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
    if previous_benches:
        meta["previous_run"] = {"benches": previous_benches, "records": args.previous}
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
    if previous_benches:
        out += [f"Not run this time, rows kept from an earlier run: {', '.join(previous_benches)}.", ""]
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
    if args.readme:
        write_readme_table(args.readme, meta, tables)
    print("\n".join(out))


def read_records(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


README_BEGIN = "<!-- bench-table: written by bench/report.py from bench/results/latest.json; do not edit -->"
README_END = "<!-- bench-table end -->"


def readme_table(meta, tables):
    """One line per row of every table: median pilus, median baseline, their ratio."""
    m = meta["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average_at_end"])
    out = [f"`make bench` ({meta['form']} form) at commit {meta['commit']}, {meta['generated']}, "
           f"{str(meta['wall_seconds']) + ' s wall; ' if meta['wall_seconds'] else ''}{m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, "
           f"load average at the end {load}. Medians over the repetitions; each ratio compares "
           "two columns measured in the same run."]
    if meta.get("failed"):
        out.append(f"Failed or timed out: {', '.join(meta['failed'])}.")
    if meta.get("previous_run"):
        out.append(f"Rows of {', '.join(meta['previous_run']['benches'])} (marked *) are from an earlier run.")
    out += ["", "| table | parameter | pilus | baseline | pilus/baseline |", "|---|---|---|---|---|"]
    for title, t in tables.items():
        for r in t["rows"]:
            unit = r["unit"]
            star = " *" if r.get("previous_run") else ""
            base = r["baseline"]
            base_text = f"{fmt(base['median'])} ({r['baseline_name']})" if base and base["median"] is not None else "n/a"
            pilus = fmt(r["pilus"]["median"]) if r["pilus"] else "n/a"
            cells = [f"{title}, {unit}{star}", r["param"], pilus, base_text, fmt(r["ratio_pilus_to_baseline"])]
            if "floor" in r and r["floor"]:
                cells[3] += f"; floor {fmt(r['floor']['median'])} (pilus/floor {fmt(r.get('ratio_pilus_to_floor'))})"
            out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(out)


def write_readme_table(path, meta, tables):
    text = open(path).read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path}: no bench-table markers ({README_BEGIN} ... {README_END})")
    head = text[:begin + len(README_BEGIN)]
    with open(path, "w") as f:
        f.write(head + "\n" + readme_table(meta, tables) + "\n" + text[end:])


if __name__ == "__main__":
    main()
