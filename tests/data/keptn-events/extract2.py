# Extracts Keptn CloudEvents (JSON objects with type sh.keptn.*, an id and a shkeptncontext)
# from JSON files, Markdown code blocks and Go raw strings of a git repository at given revisions.
import json, subprocess, sys, re, hashlib
repo_dir, repo_name = sys.argv[1], sys.argv[2]
revs = sys.argv[3:]
TY = re.compile(r"^sh\.keptn\.event\.")
out = {}
def walk(v, ptr, path, commit):
    if isinstance(v, dict):
        if isinstance(v.get("type"), str) and TY.match(v["type"]) and isinstance(v.get("data"), (dict, type(None))) and v.get("id") and v.get("shkeptncontext"):
            key = hashlib.sha1(json.dumps(v, sort_keys=True).encode()).hexdigest()
            out.setdefault(key, {"event": v, "provenance": {"repo": repo_name, "path": path, "commit": commit, "pointer": ptr}})
        for k, x in v.items():
            walk(x, ptr + "/" + str(k), path, commit)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(x, ptr + "/" + str(i), path, commit)
def candidates(path, txt):
    if path.endswith(".json"):
        yield "", txt
    elif path.endswith(".md"):
        for i, m in enumerate(re.finditer(r"```(?:json)?\s*\n(.*?)```", txt, re.S)):
            yield f"#block{i}", m.group(1)
    elif path.endswith(".go"):
        for i, m in enumerate(re.finditer(r"`(\s*\{.*?\})\s*`", txt, re.S)):
            yield f"#raw{i}", m.group(1)
for rev in revs:
    commit = subprocess.check_output(["git","-C",repo_dir,"rev-parse",rev+"^{commit}"]).decode().strip()
    try:
        files = subprocess.check_output(["git","-C",repo_dir,"grep","-l","-E",r"sh\.keptn\.event\.[a-z-]+\.triggered",commit,"--","*.json","*.md","*.go"]).decode().split("\n")
    except subprocess.CalledProcessError:
        continue
    for f in files:
        if not f: continue
        path = f.split(":",1)[1]
        if "node_modules" in path or "vendor/" in path: continue
        txt = subprocess.check_output(["git","-C",repo_dir,"show",f]).decode("utf-8","replace")
        for frag, body in candidates(path, txt):
            try: v = json.loads(body)
            except Exception: continue
            walk(v, frag, path, commit)
json.dump(list(out.values()), sys.stdout)
