import json, re, datetime
src = []
for f in ["kk2.json", "kk3.json", "spec.json", "gu.json"]:
    src += json.load(open(f))
seen = {}
for e in src:
    key = json.dumps(e["event"], sort_keys=True)
    seen.setdefault(key, e)
def gget(obj, key):
    """Go encoding/json: exact name, else case-insensitive; null = absent."""
    if not isinstance(obj, dict): return None
    if key in obj: return obj[key]
    for k, v in obj.items():
        if k.lower() == key.lower(): return v
    return None
def gstr(obj, key):
    v = gget(obj, key)
    if v is None: return ""
    if not isinstance(v, str): raise TypeError(key)
    return v
def approval(data):
    result = gstr(data, "result")
    appr = gget(data, "approval") or {}
    if not isinstance(appr, dict): raise TypeError("approval")
    p, w = gstr(appr, "pass"), gstr(appr, "warning")
    if result == "":
        ev = gget(data, "evaluation")
        try:
            if ev is None: result = ""
            else:
                if not isinstance(ev, dict): raise TypeError
                r = gstr(ev, "result")
                sc = gget(ev, "score")
                if sc is not None and not isinstance(sc, (int, float)): raise TypeError
                for k in ["timeStart", "timeEnd", "sloFileContent"]: gstr(ev, k)
                result = r
        except TypeError:
            result = ""
    if result == "pass": strat = p or "manual"
    elif result == "warning": strat = w or "manual"
    elif result == "fail": strat = "automatic"
    else: strat = "manual"
    fin = None
    if (result == "pass" and p == "automatic") or (result == "warning" and w == "automatic"):
        fin = {"status": "succeeded", "result": "pass"}
    elif result == "fail":
        fin = {"status": "succeeded", "result": "fail"}
    return {"started": True, "started_message": f"Approval strategy for result '{result}': {strat}", "finished": fin}
def ts(s):
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"):
        try: return datetime.datetime.strptime(s, fmt)
        except ValueError: pass
    return datetime.datetime.fromisoformat(s)
def evaluation(data):
    ev = gget(data, "evaluation") or {}
    te = gget(data, "test") or {}
    s, e, tf = gstr(ev, "start"), gstr(ev, "end"), gstr(ev, "timeframe")
    err = None
    if (s and e) or tf:
        if s and not e and not tf: err = "no timeframe or end date provided"
        elif e and tf: err = "'end' and 'timeframe' are mutually exclusive"
        elif e and not s: err = "start date is required when using an end date"
        elif s and e and (ts(e) - ts(s)).total_seconds() / 60 < 1:
            err = "end date must be at least 1 minute after start date"
    elif gstr(te, "start") and gstr(te, "end"):
        pass
    else:
        err = "evaluation.triggered event does not contain evaluation timeframe"
    if err:
        return {"started": True, "finished": {"status": "errored", "result": "fail", "message": err}}
    project = gstr(data, "project")
    return {"started": True, "finished": {"status": "succeeded", "result": "pass",
            "message": f"no evaluation performed by lighthouse because no SLO file configured for project {project}"}}
corpus = []
skipped = []
for e in seen.values():
    ev = e["event"]; t = ev["type"]; parts = t.split(".")
    data = ev.get("data")
    try:
        if len(parts) == 5 and parts[4] == "triggered" and parts[3] == "approval":
            exp = approval(data or {})
        elif len(parts) == 5 and parts[4] == "triggered" and parts[3] == "evaluation":
            exp = evaluation(data or {})
        elif len(parts) == 5 and parts[4] == "triggered":
            continue  # other tasks: answered by other Keptn services
        elif len(parts) == 5 and parts[3] == "approval" and parts[4] == "finished":
            continue  # settles approvals: not a stand-alone replay
        else:
            exp = {"started": False, "finished": None}  # not a task event approval-service/lighthouse answer
    except (TypeError, ValueError) as x:
        skipped.append((t, e["provenance"]["path"], str(x))); continue
    corpus.append({"provenance": e["provenance"], "event": ev, "keptn_answer": exp})
corpus.sort(key=lambda c: (c["event"]["type"], c["provenance"]["repo"], c["provenance"]["path"], c["provenance"]["pointer"]))
json.dump(corpus, open("corpus.json", "w"), indent=1, ensure_ascii=False)
import collections
print(len(corpus), collections.Counter((c["event"]["type"].split(".")[-1] if c["keptn_answer"]["started"] else "ignored") + ":" + (".".join(c["event"]["type"].split(".")[3:4])) for c in corpus).most_common())
print("skipped", skipped)
print(collections.Counter(json.dumps(c["keptn_answer"]["finished"])[:80] for c in corpus if c["keptn_answer"]["started"]))
print(collections.Counter(c["event"].get("specversion") for c in corpus))
