"""Driver of bench/unseen/run.sh: runs pare on every model in MODEL_DIRS and
writes the report (Markdown) to OUT. Run through run.sh, which builds pare,
makes the models and sets the environment.

  /usr/bin/python3 bench/unseen/run.py PARE OUT WORK MODEL_DIR...
"""
import concurrent.futures as cf
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
PY = "/usr/bin/python3"
BIG = 300 * 2**20
# label -> pare prune flags; "embed" runs only where a prunable embed group exists
CONFIGS = {"0.3": ["--ratio", "0.3"], "0.5": ["--ratio", "0.5"],
           "embed": ["--ratio", "0.3", "--prune-embed"]}
RATIOS = tuple(CONFIGS)
TIMEOUT = 900


def sh(args, timeout=TIMEOUT):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "timeout", "", "timed out after %ds" % timeout


def last(s, n=300):
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return (lines[-1] if lines else "").strip()[:n]


def helper(*args):
    rc, out, err = sh([PY, os.path.join(HERE, "helper.py")] + list(args))
    if rc != 0:
        return None, last(out) or last(err)
    return json.loads(out) if args[0] != "checker" else out.strip(), None


def one(pare, work, path, meta):
    name = os.path.basename(path)[:-5]
    rec = dict(meta, name=name, path=path, size=os.path.getsize(path))
    d = os.path.join(work, "out", name)
    os.makedirs(d, exist_ok=True)
    rec["count"], rec["count_err"] = helper("count", path)
    rc, out, err = sh([pare, "inspect", "--json", path])
    rec["inspect_rc"] = rc
    if rc == 0:
        j = json.loads(out)
        rec["params_pare"] = j["params"]
        rec["shape_conflicts"] = len(j.get("shape_conflicts") or [])
        rec["macs_uncounted"] = len(j.get("macs_uncounted") or [])
    else:
        rec["inspect_err"] = last(err)
    gpath = os.path.join(d, "groups.json")
    rc, out, err = sh([pare, "inspect", "--groups", "--json", path])
    rec["groups_rc"] = rc
    embed = False
    if rc == 0:
        open(gpath, "w").write(out)
        embed = any(g.get("kind") == "embed" and not g.get("frozen") for g in json.loads(out).get("groups") or [])
        rec["share"], rec["share_err"] = helper("share", path, gpath)
    else:
        rec["groups_err"] = last(err)
    if rec["size"] > BIG:
        rec["skipped"] = "%.0f MB > 300 MB: not pruned" % (rec["size"] / 2**20)
        return rec
    rec["prune"] = {}
    for r in RATIOS:
        if r == "embed" and not embed:
            continue
        o = os.path.join(d, "r%s.onnx" % r)
        if os.path.exists(o):
            os.remove(o)
        cmd = [pare, "prune", path, "-o", o] + CONFIGS[r] + ["--json"]
        rc, out, err = sh(cmd)
        pr = {"cmd": " ".join(cmd), "prune_rc": rc, "written": os.path.exists(o)}
        if rc == 0:
            try:
                j = json.loads(out)
                pr["before"], pr["after"] = j.get("before"), j.get("after")
            except ValueError:
                pass
        else:
            pr["prune_err"] = last(err)
        if pr["written"]:
            ccmd = [pare, "check", path, o, "--samples", "2", "--json"]
            rc, out, err = sh(ccmd)
            pr["check_cmd"], pr["check_rc"] = " ".join(ccmd), rc
            if rc in (0, 1):
                try:
                    j = json.loads(out)
                    pr["shapes"] = [o_["shape"] for o_ in j["outputs"]]
                    pr["cosine"] = [o_["cosine"] for o_ in j["outputs"]]
                except (ValueError, KeyError):
                    pass
            else:
                pr["check_err"] = last(err)
            pr["checker"], pr["checker_err"] = helper("checker", o)
        rec["prune"][r] = pr
    return rec


def fmt_int(n):
    return "{:,}".format(n) if isinstance(n, int) else "—"


def prune_cell(pr):
    if pr is None:
        return "no prunable embed group"
    if not pr["written"]:
        if pr["prune_rc"] == 0:
            return "**exit 0, no file**"
        return "refused (exit %s): %s" % (pr["prune_rc"], pr.get("prune_err", "")[:120])
    bits = []
    if pr["prune_rc"] != 0:
        bits.append("**wrote a file and exited %s**" % pr["prune_rc"])
    b, a = pr.get("before") or {}, pr.get("after") or {}
    pct = ""
    if b.get("params") and a.get("params") is not None:
        pct = ", params −%.0f%%" % (100 * (1 - a["params"] / b["params"]))
    rc = pr["check_rc"]
    if rc in (0, 1):
        bits.append("runs (check exit %s)%s, out %s" % (rc, pct, "/".join("×".join(map(str, s)) for s in pr.get("shapes", []))))
    else:
        bits.append("**check exit %s**: %s" % (rc, pr.get("check_err", "")[:150]))
    return "; ".join(bits)


def checker_cell(rec):
    if "skipped" in rec:
        return "—"
    cells = []
    for r in RATIOS:
        pr = rec["prune"].get(r)
        if pr is None:
            continue
        if not pr["written"]:
            cells.append("%s: no file" % r)
        elif pr["checker"] == "ok":
            cells.append("%s: ok" % r)
        else:
            cells.append("%s: **%s**" % (r, (pr["checker_err"] or "")[:150]))
    return "; ".join(cells)


def bugs(recs):
    out = []
    for rec in recs:
        for r, pr in (rec.get("prune") or {}).items():
            if not pr["written"]:
                continue
            if pr.get("check_rc") not in (0, 1):
                out.append((rec["name"], r, "onnxruntime", pr["cmd"], pr["check_cmd"], pr.get("check_err", "")))
            if pr.get("checker") != "ok":
                out.append((rec["name"], r, "onnx.checker", pr["cmd"],
                            "%s bench/unseen/helper.py checker %s" % (PY, pr["cmd"].split(" -o ")[1].split()[0]),
                            pr.get("checker_err", "")))
            if pr["prune_rc"] != 0:
                out.append((rec["name"], r, "exit code", pr["cmd"], "",
                            "exit %s after writing the file: %s" % (pr["prune_rc"], pr.get("prune_err", ""))))
    return out


def report(recs, out, pare_version, started, ended=None):
    L = []
    w = L.append
    w("# pare on models it has never seen\n")
    w("Generated by `bench/unseen/run.sh` (%s, pare at commit %s, %s to %s UTC). "
      "Do not edit by hand: rerun the script.\n" % (datetime.date.today().isoformat(), pare_version,
                                                    started, ended or datetime.datetime.utcnow().strftime("%H:%M")))
    w(open(os.path.join(HERE, "intro.md")).read())
    w("\n## Results\n")
    w("| model | opset | value_info | params pare / independent | inspect | prunable param share (groups, frozen) | ratio 0.3 | ratio 0.5 | ratio 0.3 --prune-embed | onnx checker (pruned) | top freeze reason |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for rec in recs:
        if "export_error" in rec:
            w("| %s | %s | — | — | — | — | export failed: %s | | | | |" % (rec["name"], rec.get("opset", "?"), rec["export_error"][:160]))
            continue
        c = rec["count"] or {}
        pp, ind = rec.get("params_pare"), c.get("params")
        fl = c.get("float_initializer_elems")
        if pp is None:
            par = "— / %s" % fmt_int(ind)
        elif pp == ind:
            par = "%s, exact" % fmt_int(pp)
        else:
            par = "**%s ≠ %s**" % (fmt_int(pp), fmt_int(ind))
        if ind is not None and fl != ind:
            par += " (float initializers %s)" % fmt_int(fl)
        insp = "ok" if rec["inspect_rc"] == 0 else "**exit %s**: %s" % (rec["inspect_rc"], rec.get("inspect_err", ""))
        if rec.get("shape_conflicts"):
            insp += " (%d shape conflicts)" % rec["shape_conflicts"]
        s = rec.get("share")
        if s:
            share = "%.1f%% (%d, %d frozen)" % (100 * s["share"], s["groups"], s["frozen_groups"])
            top = "; ".join("%s ×%d" % (t[:90], n) for t, n in s["reasons"][:2]) or "none"
        else:
            share = "**groups exit %s**: %s" % (rec.get("groups_rc"), rec.get("groups_err") or rec.get("share_err"))
            top = "—"
        if "skipped" in rec:
            cells = [rec["skipped"]] * len(RATIOS)
        else:
            cells = [prune_cell(rec["prune"].get(r)) for r in RATIOS]
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            rec["name"], c.get("opset", rec.get("opset", "?")), c.get("value_info", "?"), par, insp, share,
            " | ".join(cells), checker_cell(rec), top))
    bl = bugs(recs)
    w("\n## Summary\n")
    n = [r for r in recs if "export_error" not in r]
    w("- models: %d (%d export failures listed above, not run)" % (len(n), len(recs) - len(n)))
    w("- `pare inspect --json` succeeded on %d of %d; parameter count equal to the independent count on %d"
      % (sum(r["inspect_rc"] == 0 for r in n), len(n), sum(r.get("params_pare") == (r["count"] or {}).get("params") for r in n)))
    runs = [(r, k, p) for r in n for k, p in (r.get("prune") or {}).items()]
    w("- prune runs: %d; files written %d, of which ran in onnxruntime %d; refusals %d; skipped for size: %d models"
      % (len(runs), sum(p["written"] for _, _, p in runs),
         sum(p["written"] and p.get("check_rc") in (0, 1) for _, _, p in runs),
         sum(not p["written"] for _, _, p in runs), sum("skipped" in r for r in n)))
    w("- prune runs that wrote a file onnxruntime or onnx.checker rejects, or wrote a file and failed (bugs): %d\n"
      % len({(b[0], b[1]) for b in bl}))
    if bl:
        w("### Bugs: pare wrote a model that does not run or does not check\n")
        for name, r, what, cmd, ccmd, err in bl:
            w("- **%s, %s, %s**: `%s`%s\n  → `%s`" % (name, " ".join(CONFIGS[r]), what, cmd, (" then `%s`" % ccmd) if ccmd else "", err))
    notes = os.path.join(HERE, "notes.md")
    if os.path.exists(notes):
        w(open(notes).read())
    w("")
    open(out, "w").write("\n".join(L) + "\n")


def main(pare, out, work, *dirs):
    started = datetime.datetime.utcnow().strftime("%H:%M")
    ver = os.environ.get("PARE_COMMIT", "?")
    jobs, seen, recs = [], set(), []
    for dd in dirs:
        idx = os.path.join(dd, "index.json")
        listed = None  # a folder with an index: only the exports it lists
        if os.path.exists(idx):
            listed = set()
            for e in json.load(open(idx)):
                if "error" in e:
                    recs.append({"name": e["name"], "opset": e.get("opset"), "export_error": e["error"]})
                else:
                    listed.add(e["name"])
        for f in sorted(os.listdir(dd)):
            if listed is not None and f[:-5] not in listed:
                continue
            if f.endswith(".onnx") and f[:-5] not in seen:
                seen.add(f[:-5])
                jobs.append(os.path.join(dd, f))
    # an export that failed in one folder and succeeded in another is not a failure
    recs = [r for r in recs if r["name"] not in seen]
    recs = list({r["name"]: r for r in recs}.values())
    with cf.ThreadPoolExecutor(int(os.environ.get("UNSEEN_JOBS", "2"))) as ex:
        futs = {ex.submit(one, pare, work, p, {}): p for p in jobs}
        for f in cf.as_completed(futs):
            rec = f.result()
            print("done %-36s inspect=%s %s" % (rec["name"], rec["inspect_rc"],
                  " ".join("%s:%s/%s" % (k, v["prune_rc"], v.get("check_rc")) for k, v in (rec.get("prune") or {}).items())),
                  flush=True)
            recs.append(rec)
    recs.sort(key=lambda r: r["name"])
    json.dump(recs, open(os.path.join(work, "results.json"), "w"), indent=1)
    ended = datetime.datetime.utcnow().strftime("%H:%M")
    report(recs, out, ver, started, ended)
    open(os.path.join(work, "started"), "w").write(started + " " + ended)


def rerender(out, work):
    """Writes the report again from WORK/results.json, without running anything;
    rows whose model file is gone are dropped."""
    recs = [r for r in json.load(open(os.path.join(work, "results.json")))
            if "export_error" in r or os.path.exists(r["path"])]
    sf = os.path.join(work, "started")
    se = open(sf).read().split() if os.path.exists(sf) else ["?"]
    report(recs, out, os.environ.get("PARE_COMMIT", "?"), se[0], se[1] if len(se) > 1 else None)


if __name__ == "__main__":
    if sys.argv[1] == "--render":
        rerender(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
