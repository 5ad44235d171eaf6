#!/usr/bin/python3
"""Counts test results, one per test case, across suites.

Unit suites write Catch2 XML (unit-NAME.xml), integration and fuzz suites
pytest JUnit XML (SUITE-NAME.xml). meson's testlog.json says how each runner
ended: a runner that failed (crash, timeout) without a failing case in its
file counts as one failure of its own, so nothing fails silently.

Prints failures and skips with their reasons, then the last line
"N passed, M failed[, K skipped]"; exits 1 if anything failed.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def catch2(path):
    out = []
    root = ET.parse(path).getroot()
    for tc in root.iter("TestCase"):
        res = tc.find("OverallResult")
        ok = res is not None and res.get("success") == "true"
        msg = ""
        if not ok:
            for ex in tc.iter("Expression"):
                if ex.get("success") == "false":
                    orig = (ex.findtext("Original") or "").strip()
                    exp = (ex.findtext("Expanded") or "").strip()
                    msg = f"{ex.get('filename')}:{ex.get('line')}: {orig} ({exp})"
                    break
            if not msg:
                for fail in tc.iter("FatalErrorCondition"):
                    msg = (fail.text or "").strip()
                    break
        # A test that cannot run here says so with WARN("skip: why") and
        # asserts nothing: counted as skipped, not passed.
        skip = next((w.text.strip() for w in tc.iter("Warning") if (w.text or "").strip().startswith("skip:")), None)
        if ok and skip:
            out.append((tc.get("name"), "skip", skip))
            continue
        out.append((tc.get("name"), "pass" if ok else "fail", msg))
    return out


def junit(path):
    out = []
    root = ET.parse(path).getroot()
    for tc in root.iter("testcase"):
        name = f"{tc.get('classname', '')}::{tc.get('name')}".strip(":")
        state, msg = "pass", ""
        for tag in ("failure", "error"):
            e = tc.find(tag)
            if e is not None:
                state, msg = "fail", (e.get("message") or e.text or "").strip().splitlines()[0:1]
                msg = msg[0] if msg else tag
        e = tc.find("skipped")
        if e is not None and state == "pass":
            state, msg = "skip", (e.get("message") or "").strip()
        out.append((name, state, msg))
    return out


def main():
    res_dir, testlog = sys.argv[1], sys.argv[2]
    runs = {}
    if os.path.exists(testlog):
        with open(testlog) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                # "name": "nimbus:unit / common"
                proj_suite, _, name = e["name"].partition(" / ")
                suite = proj_suite.split(":")[-1]
                runs[(suite, name.strip())] = e.get("result", "?")
    cases = []
    seen_files = set()
    for fn in sorted(os.listdir(res_dir)):
        if not fn.endswith(".xml"):
            continue
        path = os.path.join(res_dir, fn)
        suite, _, name = fn[:-4].partition("-")
        seen_files.add((suite, name))
        try:
            rows = catch2(path) if suite == "unit" else junit(path)
        except ET.ParseError as ex:
            rows = [(fn, "fail", f"unreadable result file: {ex}")]
        for n, st, msg in rows:
            cases.append((f"{suite}/{name}: {n}", st, msg))
    for (suite, name), result in sorted(runs.items()):
        mine = [c for c in cases if c[0].startswith(f"{suite}/{name}: ")]
        if result not in ("OK", "EXPECTEDFAIL", "SKIP") and not any(c[1] == "fail" for c in mine):
            cases.append((f"{suite}/{name}", "fail", f"test runner ended with {result}"))
        if result == "SKIP" and not mine:
            cases.append((f"{suite}/{name}", "skip", "runner skipped"))

    passed = sum(1 for c in cases if c[1] == "pass")
    failed = [c for c in cases if c[1] == "fail"]
    skipped = [c for c in cases if c[1] == "skip"]
    for n, _, msg in skipped:
        print(f"SKIP  {n}: {msg}")
    for n, _, msg in failed:
        print(f"FAIL  {n}: {msg}")
    line = f"{passed} passed, {len(failed)} failed"
    if skipped:
        line += f", {len(skipped)} skipped"
    print(line)
    sys.exit(1 if failed or not cases else 0)


if __name__ == "__main__":
    main()
