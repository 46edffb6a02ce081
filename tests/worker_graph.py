#!/usr/bin/env python3
"""The worker's module graph, and a check that it is one-way.

For every worker/*.c file, the hq__* functions it defines and the hq__*
names it uses (calls, or passes as callbacks). File A depends on file B when
A uses a name B defines. Prints the edges; exits 1 (naming the cycle) when a
file reaches itself, i.e. some file calls a function defined in a file that,
directly or through others, calls it.

usage: worker_graph.py [SOURCE_DIR]
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
wdir = os.path.join(src, "worker")
files = sorted(f for f in os.listdir(wdir) if f.endswith(".c"))
if not files:
    print("no worker/*.c under", src)
    sys.exit(2)

define = re.compile(r"^[A-Za-z_][^;(]*?\b(hq__\w+)\s*\([^;]*$")
use = re.compile(r"\b(hq__\w+)\b")
comment = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
string = re.compile(r'"(?:\\.|[^"\\])*"')

defs, uses = {}, {}
for f in files:
    text = comment.sub("", string.sub('""', open(os.path.join(wdir, f)).read()))
    mine = set()
    for line in text.splitlines():
        m = define.match(line)
        if m:
            mine.add(m.group(1))
    defs[f] = mine
    uses[f] = set(use.findall(text)) - mine
owner = {name: f for f, names in defs.items() for name in names}
edges = {f: sorted({owner[n] for n in uses[f] if n in owner} - {f}) for f in files}

for f in files:
    if edges[f]:
        print(f"{f} -> {', '.join(edges[f])}")

state = {}


def visit(f, path):
    state[f] = 1
    for g in edges[f]:
        if state.get(g) == 1:
            print("cycle: " + " -> ".join(path[path.index(g):] + [g]))
            return False
        if not state.get(g) and not visit(g, path + [g]):
            return False
    state[f] = 2
    return True


for f in files:
    if not state.get(f) and not visit(f, [f]):
        sys.exit(1)
print("one-way: no file reaches itself")
