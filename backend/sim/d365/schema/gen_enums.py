"""Regenerates enums.txt from the shared D365 fixtures.

Members and values come from the trimmed $metadata XML where the enum is
there, else from the SCM OpenAPI document (values then follow declaration
order, which is an approximation), else a lone `None=0` placeholder.
Run from this folder: python3 gen_enums.py ../../../../../shared/fixtures/d365
"""
import glob, gzip, json, re, sys

root = sys.argv[1]
lines = open(f"{root}/entities.txt").read().split("\n")
types = set()
for i in range(0, len(lines) - 1, 2):
    for f in lines[i + 1].strip().split(", "):
        t = f.split(":", 1)[1].rstrip("?")
        if not t.startswith("Edm."):
            types.add(t)
xml = {}
for fn in glob.glob(f"{root}/metadata/*.xml"):
    s = open(fn, encoding="utf-8-sig").read()
    for m in re.finditer(r'<EnumType Name="([^"]+)"[^>]*>(.*?)</EnumType>', s, re.S):
        xml[m.group(1)] = re.findall(r'<Member Name="([^"]+)" Value="(-?\d+)"', m.group(2))
schemas = json.load(gzip.open(f"{root}/scm_openapi_from_live_csdl.json.gz"))["components"]["schemas"]
oa = {k: v["enum"] for k, v in schemas.items() if isinstance(v, dict) and "enum" in v}
norm = lambda x: x.replace("_", "").lower()
xn = {norm(k): v for k, v in xml.items()}
on = {norm(k): v for k, v in oa.items()}
with open("enums.txt", "w") as out:
    for t in sorted(types):
        if norm(t) in xn:
            members = xn[norm(t)]
        elif norm(t) in on:
            members = [(m, str(i)) for i, m in enumerate(on[norm(t)])]
        else:
            members = [("None", "0")]
        out.write(t + "=" + ",".join(f"{m}:{v}" for m, v in members) + "\n")
