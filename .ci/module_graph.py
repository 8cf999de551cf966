#!/usr/bin/env python3
"""Prints which top-level modules of src/ each module uses, and fails on a cycle.

A module is a file src/X.rs or a folder src/X/. A use is any `crate::X` path, including
those inside `use crate::{X::.., Y}` groups. Comments are skipped.
"""
import os, re, sys
from collections import defaultdict

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
mods = set()
for name in os.listdir(root):
    if name.endswith(".rs") and name not in ("lib.rs",):
        mods.add(name[:-3])
    elif os.path.isdir(os.path.join(root, name)):
        mods.add(name)

# Names the crate root re-exports (`pub use module::{A, B}`), so that `crate::A` counts as
# a use of `module`.
reexports = {}
lib = open(os.path.join(root, "lib.rs")).read()
for m in re.finditer(r"pub use (\w+)::(\{[^}]*\}|\w+);", lib):
    for name in re.findall(r"\w+", m.group(2)):
        reexports[name] = m.group(1)

def top_module(path):
    rel = os.path.relpath(path, root).split(os.sep)
    return rel[0][:-3] if rel[0].endswith(".rs") else rel[0]

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())

def crate_uses(text):
    found = set()
    for m in re.finditer(r"crate::(\{)?", text):
        if m.group(1):  # a group: take the first identifier of each top-level entry
            depth, i, start, entries = 1, m.end(), m.end(), []
            while depth and i < len(text):
                c = text[i]
                if c == "{": depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0: entries.append(text[start:i])
                elif c == "," and depth == 1:
                    entries.append(text[start:i]); start = i + 1
                i += 1
            for e in entries:
                w = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", e)
                if w: found.add(w.group(1))
        else:
            w = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[m.end():])
            if w: found.add(w.group(0))
    return found

graph = defaultdict(set)
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"): continue
        path = os.path.join(dirpath, f)
        if os.path.relpath(path, root) == "lib.rs": continue
        me = top_module(path)
        text = strip_comments(open(path).read())
        # Unit tests may reach anywhere; they are not part of the layering.
        text = re.split(r"#\[cfg\(test\)\]", text)[0]
        for u in crate_uses(text):
            u = reexports.get(u, u)
            if u in mods and u != me:
                graph[me].add(u)

# Layers: a module's layer is one more than the highest layer it uses.
layer, visiting = {}, set()
def depth(m, stack):
    if m in layer: return layer[m]
    if m in visiting:
        cyc = stack[stack.index(m):] + [m]
        print("cycle: " + " -> ".join(cyc)); sys.exit(1)
    visiting.add(m)
    d = 1 + max((depth(u, stack + [m]) for u in graph[m]), default=-1)
    visiting.discard(m); layer[m] = d
    return d
for m in sorted(mods): depth(m, [])
for d in sorted(set(layer.values()), reverse=True):
    for m in sorted(x for x in mods if layer[x] == d):
        uses = ", ".join(sorted(graph[m])) or "-"
        print(f"{d:2}  {m:16} uses {uses}")
print("no cycle")
