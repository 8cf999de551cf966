#!/usr/bin/env python3
"""Checks, without building for them, that the crate's `libc` calls exist on other Unixes.

Lists every `libc::` item that the crate's `src/` uses and looks each one up in the source
of the `libc` version that `Cargo.lock` pins, for every target in TARGETS (Linux, macOS on
both architectures, FreeBSD, and NetBSD, OpenBSD, DragonFly and illumos, whose standard
library this machine does not have; the environment variable PORTABILITY_TARGETS replaces the list):

- on our side, a use that a `cfg` keeps out of a target (a call under
  `#[cfg(target_os = "linux")]`, say) is not looked up for that target;
- on libc's side, only the files that libc compiles for the target count (its module tree,
  `cfg_if!` chains and `#[cfg]` attributes evaluated with the target's cfg values from
  `rustc --print cfg --target`, which needs no standard library for the target), and a
  declaration counts only where its own `cfg` does not exclude the target.

A `cfg` this script cannot decide (a cargo feature of this crate, `test`, most cfgs that
libc's build script sets) is taken as possibly true, on both sides: our use is looked up,
and libc's declaration counts. So an item that libc declares only under such a cfg passes
here. The strict check is `cargo check --target`, which `.ci/portability` runs wherever the
target's standard library is installed; this one runs everywhere. Declarations are found by
their shape (`pub fn NAME`, `pub const NAME`, `pub type NAME`, `pub struct NAME`, a
`c_enum!` variant, a name in a `pub use`), which covers how libc declares things today.
Known answers (CANARIES) are checked first, so a lookup that stopped finding anything, or
found everything, fails loudly.

Exits 1 listing every missing item with the place it is used; 2 if the lookup itself is
broken. Run from anywhere inside the repository: `python3 .ci/libc_items.py`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

TARGETS = os.environ.get(
    "PORTABILITY_TARGETS",
    "x86_64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd"
    " x86_64-unknown-netbsd x86_64-unknown-openbsd x86_64-unknown-dragonfly"
    " x86_64-unknown-illumos",
).split()

# (target_os, item, declared?): answers known from the platforms' headers, to prove the
# lookup can tell the two apart on every platform it checks.
CANARIES = [
    ("linux", "renameat2", True),
    ("linux", "posix_fallocate", True),
    ("linux", "__error", False),
    ("linux", "renameatx_np", False),
    ("macos", "renameatx_np", True),
    ("macos", "__error", True),
    ("macos", "posix_fallocate", False),
    ("macos", "renameat2", False),
    ("macos", "__errno_location", False),
    ("freebsd", "posix_fallocate", True),
    ("freebsd", "dup3", True),
    ("freebsd", "renameatx_np", False),
    ("freebsd", "__errno_location", False),
]

# The FreeBSD ABI libc's build script selects when it is not told otherwise.
LIBC_FREEBSD_VERSION = 12

# ---------------------------------------------------------------------------------------
# cfg expressions, evaluated in three-valued logic: True, False, or None (cannot tell).


def t_not(value):
    return None if value is None else not value


def t_all(values):
    values = list(values)
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def t_any(values):
    values = list(values)
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


CFG_TOKEN = re.compile(r'\s*(?:([A-Za-z_][A-Za-z0-9_]*)|("(?:\\.|[^"\\])*")|(.))')


def parse_cfg(source: str):
    """Parses the inside of `cfg(...)` (a comma-separated list means all of them)."""
    tokens = []
    for match in CFG_TOKEN.finditer(source):
        ident, string, other = match.groups()
        if ident:
            tokens.append(("ident", ident))
        elif string:
            tokens.append(("str", string[1:-1]))
        elif other:
            tokens.append(("punct", other))
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else ("end", "")

    def take():
        nonlocal position
        token = peek()
        position += 1
        return token

    def predicate():
        kind, value = take()
        if kind != "ident":
            raise ValueError(f"unexpected {value!r} in cfg({source})")
        if peek() == ("punct", "("):
            take()
            items = predicates(")")
            if value == "all":
                return ("all", items)
            if value == "any":
                return ("any", items)
            if value == "not" and len(items) == 1:
                return ("not", items[0])
            raise ValueError(f"unknown cfg operator {value} in cfg({source})")
        if peek() == ("punct", "="):
            take()
            kind2, string = take()
            if kind2 != "str":
                raise ValueError(f"expected a string in cfg({source})")
            return ("kv", value, string)
        return ("name", value)

    def predicates(closing):
        items = []
        while peek() != ("punct", closing) and peek()[0] != "end":
            items.append(predicate())
            if peek() == ("punct", ","):
                take()
        take()
        return items

    items = predicates("")
    return items[0] if len(items) == 1 else ("all", items)


class Env:
    """What is known about the cfg values of one crate built for one target."""

    # Keys whose every value rustc reports: a value not reported is false.
    KNOWN_KEYS = {
        "target_os", "target_family", "target_env", "target_vendor", "target_arch",
        "target_pointer_width", "target_endian", "target_abi", "target_has_atomic",
        "target_feature", "panic",
    }
    # Names that are false unless rustc reports them (`debug_assertions` depends on the
    # profile, `test` on what is being built: both undecided).
    KNOWN_NAMES = {"unix", "windows", "miri", "doc", "docsrs"}

    def __init__(self, rustc_cfg, features=None, names_true=(), names_false=()):
        self.pairs = set()
        self.names = set()
        for line in rustc_cfg:
            if "=" in line:
                key, value = line.split("=", 1)
                self.pairs.add((key, value.strip('"')))
            elif line:
                self.names.add(line)
        self.names.discard("debug_assertions")
        self.features = features  # None: undecided
        self.names_true = set(names_true)
        self.names_false = set(names_false)

    def eval(self, expr):
        kind = expr[0]
        if kind == "all":
            return t_all(self.eval(e) for e in expr[1])
        if kind == "any":
            return t_any(self.eval(e) for e in expr[1])
        if kind == "not":
            return t_not(self.eval(expr[1]))
        if kind == "kv":
            key, value = expr[1], expr[2]
            if key == "feature":
                return None if self.features is None else value in self.features
            if key in self.KNOWN_KEYS:
                return (key, value) in self.pairs
            return None
        name = expr[1]
        if name in self.names or name in self.names_true:
            return True
        if name in self.KNOWN_NAMES or name in self.names_false:
            return False
        return None

    def eval_all(self, exprs):
        return t_all(self.eval(e) for e in exprs)


# ---------------------------------------------------------------------------------------
# Rust source, scanned just well enough for cfg regions, modules and declarations.

LITERAL = re.compile(
    r"""(?P<line>//[^\n]*)
      | (?P<block>/\*)
      | (?<![A-Za-z0-9_])(?P<raw>b?r(?P<hashes>\#*)")
      | (?P<str>(?<![A-Za-z0-9_])b?"(?:\\.|[^"\\])*")
      | (?P<char>(?<![A-Za-z0-9_])b?'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.)|[^\\'\n])')
    """,
    re.X | re.S,
)
BRACKET = re.compile(r"[()\[\]{}]")
STRUCTURE = re.compile(r"[;,(){}\[\]]")
ITEM_START = re.compile(
    r'(?:pub\s*(?:\([^)]*\))?\s*)?(?:(?:unsafe|const|async|safe|default|extern\s*"[^"]*")\s+)*'
    r"(?:fn|struct|enum|union|impl|trait|mod|const|static|type|use|let|extern|macro_rules!)\b"
)
DECLARATION = re.compile(
    r'\bpub\b\s*(?:\([^)]*\))?\s*(?:\{const\}\s*)?(?:(?:unsafe|const|safe|extern\s*"[^"]*")\s+)*'
    r"(?:fn|const|static|type|struct|union|enum|trait)\s+(?:mut\s+)?([A-Za-z_][A-Za-z0-9_]*)"
    # c_enum! variants (`pub NAME,` / `pub NAME = ...`).
    r"|\bpub\s+([A-Za-z_][A-Za-z0-9_]*)\s*[,=]"
)
# Re-exports (`pub use core::ffi::{c_int, c_uint};`): each name counts as declared there.
REEXPORT = re.compile(r"\bpub\s*(?:\([^)]*\))?\s*use\s+([^;]*);")
MODULE = re.compile(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*([;{])")
LIBC_USE = re.compile(r"(?<![A-Za-z0-9_])(?:::)?libc::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


class SourceFile:
    """One `.rs` file: its cfg regions, module declarations and declared names."""

    def __init__(self, path: Path):
        self.path = path
        original = path.read_text(encoding="utf-8", errors="replace")
        self.text, self.skel = self._strip(original)
        self.pairs = self._match_brackets()
        self.skip_attributes = set()
        self.regions = []  # (start, end, [cfg expr]) where all exprs must hold
        self._cfg_if_regions()
        self._attribute_regions()
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    @staticmethod
    def _strip(original):
        """(text without comments, text without comments or literal contents)."""
        text, skel = list(original), list(original)
        position = 0
        while True:
            match = LITERAL.search(original, position)
            if not match:
                break
            start = match.start()
            if match.group("line") is not None:
                end = match.end()
                text[start:end] = skel[start:end] = blank(original[start:end])
            elif match.group("block") is not None:
                depth, end = 1, match.end()
                while depth and end < len(original):
                    if original.startswith("/*", end):
                        depth, end = depth + 1, end + 2
                    elif original.startswith("*/", end):
                        depth, end = depth - 1, end + 2
                    else:
                        end += 1
                text[start:end] = skel[start:end] = blank(original[start:end])
            elif match.group("raw") is not None:
                closing = '"' + match.group("hashes")
                found = original.find(closing, match.end())
                end = len(original) if found < 0 else found + len(closing)
                skel[match.end() : end - len(closing)] = blank(
                    original[match.end() : end - len(closing)]
                )
            else:
                end = match.end()
                skel[start + 1 : end - 1] = blank(original[start + 1 : end - 1])
            position = max(end, start + 1)
        return "".join(text), "".join(skel)

    def _match_brackets(self):
        pairs, stack = {}, []
        closing_of = {")": "(", "]": "[", "}": "{"}
        for match in BRACKET.finditer(self.skel):
            char, position = match.group(), match.start()
            if char in "([{":
                stack.append((char, position))
            elif stack and stack[-1][0] == closing_of[char]:
                _, opening = stack.pop()
                pairs[opening] = position
                pairs[position] = opening
        return pairs

    def _skip_space(self, position):
        while position < len(self.skel) and self.skel[position].isspace():
            position += 1
        return position

    def _cfg_of_attribute(self, opening):
        """The cfg expression of the attribute whose `[` is at `opening`, if it is a cfg."""
        closing = self.pairs.get(opening)
        if closing is None:
            return None, opening
        content = self.text[opening + 1 : closing].strip()
        match = re.match(r"cfg\s*\((.*)\)\s*$", content, re.S)
        if not match:
            return None, closing
        try:
            return parse_cfg(match.group(1)), closing
        except ValueError:
            # Inside a macro's definition (`cfg($($meta)*)`): cannot tell.
            return ("name", "$unparsed"), closing

    def _cfg_if_regions(self):
        for match in re.finditer(r"\bcfg_if!\s*([{(])", self.skel):
            position = match.start(1) + 1
            end_of_macro = self.pairs.get(match.start(1), len(self.skel))
            earlier = []
            while position < end_of_macro:
                position = self._skip_space(position)
                condition = None
                if self.skel.startswith("if", position):
                    position = self._skip_space(position + 2)
                    if not self.skel.startswith("#[", position):
                        break
                    self.skip_attributes.add(position)
                    condition, closing = self._cfg_of_attribute(position + 1)
                    if condition is None:
                        break
                    position = self._skip_space(closing + 1)
                if not self.skel.startswith("{", position) or position not in self.pairs:
                    break
                body_end = self.pairs[position]
                exprs = [("not", e) for e in earlier]
                if condition is not None:
                    exprs.insert(0, condition)
                    earlier.append(condition)
                self.regions.append((position, body_end + 1, exprs))
                if condition is None:
                    break  # the final `else`
                position = self._skip_space(body_end + 1)
                if not self.skel.startswith("else", position):
                    break
                position += 4

    def _element_end(self, start):
        """Where the item, statement, field or arm that starts at `start` ends."""
        is_item = ITEM_START.match(self.skel, start) is not None
        position = start
        while True:
            match = STRUCTURE.search(self.skel, position)
            if not match:
                return len(self.skel)
            char, at = match.group(), match.start()
            if char in "([{":
                closing = self.pairs.get(at)
                if closing is None:
                    return len(self.skel)
                if char == "{":
                    after = self._skip_space(closing + 1)
                    next_char = self.skel[after : after + 1]
                    if next_char in (";", ","):
                        return after + 1
                    word = re.match(r"[A-Za-z_]+", self.skel[after : after + 8])
                    continues = (next_char and next_char in ".?=<>!&|+-*/%^") or (
                        word and word.group() in ("else", "as")
                    )
                    if not continues:
                        return closing + 1
                position = closing + 1
                continue
            if char == ";" or (char == "," and not is_item):
                return at + 1
            if char == ",":
                position = at + 1
                continue
            return at  # the end of the enclosing group

    def _attribute_regions(self):
        for match in re.finditer(r"#(!?)\[", self.skel):
            if match.start() in self.skip_attributes:
                continue
            condition, closing = self._cfg_of_attribute(match.end() - 1)
            if condition is None:
                continue
            if match.group(1):  # `#![cfg(...)]`: the enclosing module, here the file
                self.regions.append((0, len(self.skel), [condition]))
                continue
            start = self._skip_space(closing + 1)
            while self.skel.startswith("#[", start) and start + 1 in self.pairs:
                start = self._skip_space(self.pairs[start + 1] + 1)
            self.regions.append((match.start(), self._element_end(start), [condition]))

    def cfg_at(self, position):
        exprs = []
        for start, end, conditions in self.regions:
            if start <= position < end:
                exprs.extend(conditions)
        return exprs

    def line_of(self, position):
        low, high = 0, len(self.line_starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self.line_starts[middle] <= position:
                low = middle
            else:
                high = middle - 1
        return low + 1

    def modules(self):
        """(position, name, inline, enclosing inline modules, #[path])."""
        inline_spans = []
        found = []
        for match in MODULE.finditer(self.skel):
            inline = match.group(2) == "{"
            opening = match.end() - 1
            if inline and opening in self.pairs:
                inline_spans.append((opening, self.pairs[opening], match.group(1)))
            found.append((match.start(), match.group(1), inline))
        result = []
        for position, name, inline in found:
            chain = [n for (s, e, n) in inline_spans if s < position < e]
            before = self.text[max(0, position - 300) : position]
            path = re.search(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub\s*(?:\([^)]*\))?\s*)?$', before)
            result.append((position, name, inline, chain, path.group(1) if path else None))
        return result

    @property
    def declarations(self):
        if not hasattr(self, "_declarations"):
            table = {}
            for match in DECLARATION.finditer(self.skel):
                name = match.group(1) or match.group(2)
                table.setdefault(name, []).append(match.start())
            for match in REEXPORT.finditer(self.skel):
                for part in re.split(r"[{},]", match.group(1)):
                    words = part.split()
                    if not words:
                        continue
                    # `path::name`, or `path::name as alias`: the alias is what is declared.
                    name = words[-1].split("::")[-1]
                    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name != "self":
                        table.setdefault(name, []).append(match.start())
            self._declarations = table
        return self._declarations

    def libc_uses(self):
        for match in LIBC_USE.finditer(self.skel):
            names = match.group(1)
            if names.startswith("{"):
                for part in names[1:-1].split(","):
                    part = part.strip().split(" as ")[0].strip()
                    if part and part != "self":
                        yield match.start(), part
            else:
                yield match.start(), names


@lru_cache(maxsize=None)
def source(path: Path) -> SourceFile:
    return SourceFile(path)


def module_files(root: Path, env: Env):
    """Every file of the crate rooted at `root` that may be compiled under `env`, with the
    cfg expressions that must hold for it to be."""
    included = {}
    pending = [(root, [])]
    while pending:
        path, conditions = pending.pop()
        if path in included:
            continue
        included[path] = conditions
        file = source(path)
        is_mod_rs = path == root or path.name == "mod.rs"
        for position, name, inline, chain, path_attribute in file.modules():
            if inline:
                continue
            needed = conditions + file.cfg_at(position)
            if env.eval_all(needed) is False:
                continue
            base = path.parent if is_mod_rs else path.parent / path.stem
            if path_attribute:
                relative_to = base.joinpath(*chain) if chain else path.parent
                candidates = [relative_to / path_attribute]
            else:
                base = base.joinpath(*chain)
                candidates = [base / f"{name}.rs", base / name / "mod.rs"]
            for candidate in candidates:
                if candidate.is_file():
                    pending.append((candidate.resolve(), needed))
                    break
    return included


def find_declaration(name, files, env):
    """Where `name` is declared for `env`'s target, or None."""
    for path, conditions in files.items():
        file = source(path)
        for position in file.declarations.get(name, []):
            if env.eval_all(conditions + file.cfg_at(position)) is not False:
                return path, file.line_of(position)
    return None


# ---------------------------------------------------------------------------------------


def fail(message):
    """The lookup cannot be done: exit 2, as for a broken lookup, not 1 (missing items)."""
    print(f"portability: {message}", file=sys.stderr)
    sys.exit(2)


def cargo_metadata(repo: Path):
    command = ["cargo", "metadata", "--format-version", "1"]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        result = subprocess.run(command + ["--offline"], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"cargo metadata failed:\n{result.stderr}")
    return json.loads(result.stdout)


def rustc_cfg(target):
    result = subprocess.run(
        ["rustc", "--print", "cfg", "--target", target], capture_output=True, text=True
    )
    if result.returncode != 0:
        fail(f"rustc does not know the target {target}:\n{result.stderr}")
    return result.stdout.splitlines()


def short_name(target):
    arch, *_, os_name = target.split("-")
    if os_name in ("gnu", "musl"):
        os_name = "linux-" + os_name
    elif os_name == "darwin":
        os_name = "macos"
    return f"{arch}-{os_name}"


def main():
    repo = Path(__file__).resolve().parent.parent
    metadata = cargo_metadata(repo)
    root_id = metadata["resolve"]["root"]
    packages = {p["id"]: p for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    libc_ids = [d["pkg"] for d in nodes[root_id]["deps"] if d["name"] == "libc"]
    if len(libc_ids) != 1:
        fail("the crate has no direct dependency on libc")
    libc = packages[libc_ids[0]]
    libc_root = Path(libc["manifest_path"]).parent / "src" / "lib.rs"
    libc_features = set(nodes[libc_ids[0]]["features"])
    crate_root = Path(packages[root_id]["manifest_path"]).parent / "src" / "lib.rs"
    freebsd_versions = [f"freebsd{v}" for v in range(10, 16)]

    print(f"libc {libc['version']} ({libc_root.parent.parent})")
    columns = []
    broken = []
    for target in TARGETS:
        cfg = rustc_cfg(target)
        target_os = next(line.split('"')[1] for line in cfg if line.startswith("target_os="))
        chosen = f"freebsd{LIBC_FREEBSD_VERSION}" if target_os == "freebsd" else None
        libc_env = Env(
            cfg,
            features=libc_features,
            names_true=[chosen] if chosen else [],
            names_false=[v for v in freebsd_versions if v != chosen] + ["test"],
        )
        our_env = Env(cfg)  # our features and `test`: undecided
        libc_files = module_files(libc_root.resolve(), libc_env)
        our_files = module_files(crate_root.resolve(), our_env)
        for os_name, item, expected in CANARIES:
            if os_name == target_os:
                found = find_declaration(item, libc_files, libc_env) is not None
                if found != expected:
                    broken.append(
                        f"{target}: {item} should be {'declared' if expected else 'absent'}"
                        f" but the lookup says {'declared' if found else 'absent'}"
                    )
        columns.append((target, libc_env, libc_files, our_env, our_files))

    if broken:
        fail("the libc lookup itself is broken (a known answer came out wrong):\n  "
             + "\n  ".join(broken))

    # Every use, with whether each target compiles it.
    uses = {}  # item -> {(path, line): {target: whether that target compiles the use}}
    for target, _, _, our_env, our_files in columns:
        for path, conditions in our_files.items():
            file = source(path)
            for position, item in file.libc_uses():
                needed = our_env.eval_all(conditions + file.cfg_at(position)) is not False
                where = (path.relative_to(repo), file.line_of(position))
                sites = uses.setdefault(item, {})
                sites.setdefault(where, {})[target] = needed

    width = max(len(item) for item in uses) if uses else 4
    column = max(len(short_name(t)) for t, *_ in columns)
    header = "".join(f"  {short_name(t):<{column}}" for t, *_ in columns)
    print(f"{len(uses)} libc items used in src/; for each target: ok (declared), "
          "- (our code leaves it out there), MISSING")
    print(f"{'item':<{width}}{header}".rstrip())
    missing = []
    for item in sorted(uses, key=str.lower):
        cells = []
        for target, libc_env, libc_files, _, _ in columns:
            sites = [w for w, targets in uses[item].items() if targets.get(target)]
            if not sites:
                cells.append("-")
            elif find_declaration(item, libc_files, libc_env):
                cells.append("ok")
            else:
                cells.append("MISSING")
                missing.append((target, item, sites))
        print((f"{item:<{width}}" + "".join(f"  {c:<{column}}" for c in cells)).rstrip())

    if missing:
        print("\nportability: libc does not declare these items for a target our code uses "
              "them on; put the call behind a cfg with a portable fallback:")
        for target, item, sites in missing:
            places = ", ".join(f"{path}:{line}" for path, line in sorted(sites))
            print(f"  {target}: libc::{item} (used at {places})")
        sys.exit(1)
    print(f"portability: every libc item is declared where it is used "
          f"({', '.join(t for t, *_ in columns)})")


if __name__ == "__main__":
    main()
