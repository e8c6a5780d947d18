#!/usr/bin/env python3
"""Medians and same-round ratios of RESULT lines (wrk via rounds.sh or result.lua, and pgbench).

Usage: summary.py RESULTS_FILE [PEER [LABEL...]]
       summary.py --pgbench LABEL ROUND PGBENCH_OUTPUT LOG...   (prints one RESULT line)
Each line "RESULT label=L ... rps=R p50_us=A p99_us=B ... round=N ..." is one run. Prints, per
label: the median req/s with every round's value, the median p50 and p99, and the failures
(non-2xx answers and socket errors; any failure marks the label INVALID, as an error page is
cheaper than a real answer). Then, for each other label (or only LABEL...), the ratio against
PEER: ratio of the medians and the median of the per-round ratios, which is the figure to quote
(the machine drifts from minute to minute; one round's servers share the same minute), and the
p99 of both.
"""
import statistics as st
import sys


def runs(path):
    out = []
    for line in open(path):
        if line.startswith("RESULT"):
            out.append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
    return out


def failures(r):
    keys = ("non2xx", "errors", "errors_connect", "errors_read", "errors_timeout", "failed")
    # A run that completed nothing failed, whatever its counters say (wrk counts no timeout
    # for a request still hanging when the run ends).
    return sum(int(r.get(k, 0)) for k in keys) + (r.get("requests") == "0")


def pgbench(label, rnd, output, logs):
    """One RESULT line from pgbench's report and its per-transaction logs (-l): column 3 of
    each log line is the transaction's latency in microseconds."""
    text = open(output).read()
    tps = next(l.split()[2] for l in text.splitlines() if l.startswith("tps = "))
    failed = next((l.split()[4] for l in text.splitlines() if l.startswith("number of failed")), "0")
    lat = sorted(int(line.split()[2]) for path in logs for line in open(path))
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
    print(f"RESULT label={label} rps={float(tps):.1f} p50_us={pct(0.5)} p99_us={pct(0.99)} "
          f"requests={len(lat)} failed={failed} round={rnd}")


def main():
    if sys.argv[1] == "--pgbench":
        return pgbench(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    res = runs(sys.argv[1])
    peer = sys.argv[2] if len(sys.argv) > 2 else None
    only = sys.argv[3:]
    labels = list(dict.fromkeys(r["label"] for r in res))
    of = lambda lab: [r for r in res if r["label"] == lab]
    med = lambda lab, k: st.median(float(r[k]) for r in of(lab))
    bad = {lab: sum(failures(r) for r in of(lab)) for lab in labels}
    for lab in labels:
        rs = of(lab)
        print(f"{lab}: median {med(lab, 'rps'):.1f} req/s [{' '.join(r['rps'] for r in rs)}], "
              f"p50 {med(lab, 'p50_us') / 1000:.2f} ms, p99 {med(lab, 'p99_us') / 1000:.2f} ms "
              f"[{' '.join('%.1f' % (int(r['p99_us']) / 1000) for r in rs)}], "
              f"load1 [{' '.join(r.get('load1', '?') for r in rs)}], failures {bad[lab]}"
              + ("   <-- INVALID: failed requests" if bad[lab] else ""))
    if peer not in labels:
        return
    for lab in only or [x for x in labels if x != peer]:
        if lab not in labels:
            continue
        peer_by_round = {r["round"]: float(r["rps"]) for r in of(peer)}
        per = [float(r["rps"]) / peer_by_round[r["round"]] for r in of(lab)
               if peer_by_round.get(r["round"])]
        if not per:
            continue
        print(f"RATIO {lab}/{peer}: median of per-round ratios {st.median(per):.2f}x "
              f"[{' '.join(f'{x:.2f}' for x in per)}], ratio of medians "
              f"{med(lab, 'rps') / med(peer, 'rps'):.2f}x; p99 {med(lab, 'p99_us') / 1000:.2f} ms vs "
              f"{med(peer, 'p99_us') / 1000:.2f} ms"
              + ("   <-- INVALID: failed requests" if bad[lab] or bad[peer] else ""))


if __name__ == "__main__":
    main()
