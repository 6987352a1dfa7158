#!/usr/bin/env python3
"""Checks that the documentation still describes the repository it is in.

    python3 tools/check_docs.py                    # links, README length, doc-test commands
    python3 tools/check_docs.py --no-run           # links and README length only
    python3 tools/check_docs.py --build build-rel  # run the doc-test commands against another build

It checks
  (a) every relative link in README.md, docs/**/*.md and benchmarks/results/README.md: the file
      or folder exists and, for a `#anchor` into a Markdown file, a heading there has that
      GitHub slug;
  (b) that README.md has at most 250 lines (it is a front page; the rest belongs in docs/);
  (c) unless --no-run: the commands of every fenced code block immediately preceded by the line
      `<!-- doc-test -->`, each line run with bash from the repository root as a reader would
      type it, a path starting build/ taken from --build instead (default build). Only cheap
      commands belong there (--help, a summary): no training, no network.
It prints every problem, then a last line "check_docs: N passed, M failed", and exits 1 if any
check failed. --allow-missing-file PATH (repeatable; a PATH ending in / stands for everything
under it) accepts links to files that do not exist yet, such as those a change in flight adds.
Needs only the standard library.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import unicodedata
from urllib.parse import unquote

README_MAX_LINES = 250
DOC_TEST_MARK = "<!-- doc-test -->"
COMMAND_TIMEOUT_S = 60

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
# An inline link or image, [text](target) or [text](target "title"); the text may hold one level of
# brackets ([`x[0]`](...)). Targets with spaces or parentheses are not used in these documents.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def github_slug(heading):
    """The anchor GitHub gives a heading: the rendered text lower-cased, every character that is
    not a letter, digit, mark, space, hyphen or underscore dropped, spaces turned into hyphens (one
    each: "a — b" gives "a--b")."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "")
    kept = []
    for c in text.lower():
        category = unicodedata.category(c)
        if c in " -_" or category[0] in "LNM":
            kept.append(c)
    return "".join(kept).replace(" ", "-")


def strip_code_spans(line):
    """The line with inline code spans blanked, so that a link written as code is not checked."""
    return re.sub(r"(`+)(.+?)\1", lambda m: " " * len(m.group(0)), line)


def scan(path):
    """A Markdown file's headings' slugs, its links (line number, target) and its doc-test blocks
    (line number of each command, command), skipping fenced code."""
    slugs, links, blocks = set(), [], []
    seen = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    fence, block, previous = None, None, ""
    for number, line in enumerate(lines, 1):
        opening = FENCE.match(line)
        if fence is not None:
            closing = line.strip()
            if closing and set(closing) == {fence[0]} and len(closing) >= len(fence) and opening:
                fence = None
                if block is not None:
                    blocks.append(block)
                    block = None
            elif block is not None:
                block.append((number, line))
            previous = line
            continue
        if opening:
            fence = opening.group(1)
            block = [] if previous.strip() == DOC_TEST_MARK else None
            previous = line
            continue
        heading = HEADING.match(line)
        if heading:
            slug = github_slug(heading.group(2))
            # GitHub numbers repeated headings: the second "Notes" is "notes-1".
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            slugs.add(slug if count == 0 else "%s-%d" % (slug, count))
        for anchor in HTML_ANCHOR.findall(line):
            slugs.add(anchor)
        text = strip_code_spans(line)
        for m in INLINE_LINK.finditer(text):
            links.append((number, m.group(1)))
        m = REFERENCE_DEFINITION.match(text)
        if m:
            links.append((number, m.group(1)))
        previous = line
    if block is not None:
        blocks.append(block)
    return slugs, links, blocks


def doc_files(root):
    found = [os.path.join(root, "README.md")]
    found += sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    found.append(os.path.join(root, "benchmarks", "results", "README.md"))
    return [f for f in found if os.path.isfile(f)]


class Tally:
    def __init__(self):
        self.passed, self.problems = 0, []

    def ok(self):
        self.passed += 1

    def fail(self, message):
        self.problems.append(message)


def allowed_missing(relative, allowed):
    return any(relative == a or (a.endswith("/") and (relative + "/").startswith(a)) for a in allowed)


def check_links(root, files, allowed, tally):
    slug_cache = {}

    def slugs_of(path):
        if path not in slug_cache:
            slug_cache[path] = scan(path)[0]
        return slug_cache[path]

    for doc in files:
        _, links, _ = scan(doc)
        shown = os.path.relpath(doc, root)
        for number, target in links:
            if not target or SCHEME.match(target) or target.startswith("//"):
                continue  # a web address: not this checker's business
            file_part, _, anchor = target.partition("#")
            file_part = unquote(file_part.split("?")[0])
            path = os.path.normpath(os.path.join(os.path.dirname(doc), file_part)) if file_part else doc
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            where = "%s:%d: link %s" % (shown, number, target)
            if relative.startswith("../"):
                tally.fail("%s leaves the repository" % where)
                continue
            if not os.path.exists(path):
                if allowed_missing(relative, allowed):
                    tally.ok()
                else:
                    tally.fail("%s: no such file or folder %s" % (where, relative))
                continue
            if anchor and path.endswith(".md") and os.path.isfile(path):
                if unquote(anchor).lower() not in slugs_of(path):
                    tally.fail("%s: %s has no heading with the anchor #%s" % (where, relative, anchor))
                    continue
            tally.ok()


def check_readme_length(root, tally):
    readme = os.path.join(root, "README.md")
    if not os.path.isfile(readme):
        tally.fail("README.md: missing")
        return
    with open(readme, encoding="utf-8") as f:
        count = len(f.read().splitlines())
    if count > README_MAX_LINES:
        tally.fail("README.md: %d lines, more than %d: move the detail to docs/" % (count, README_MAX_LINES))
    else:
        tally.ok()


def commands(block):
    """The block's commands with the line each starts on: comments and blank lines left out, a line
    ending in a backslash joined to the next."""
    found, pending, start = [], "", None
    for number, line in block:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, pending + line))
        pending = ""
    if pending:
        found.append((start, pending))
    return found


def run_doc_tests(root, files, build, tally):
    env = dict(os.environ)
    for doc in files:
        shown = os.path.relpath(doc, root)
        for block in scan(doc)[2]:
            for number, shown_command in commands(block):
                # As written for a reader (build/bin/convnet ...), run on the build folder given.
                command = re.sub(r"(^|[\s=])build/", lambda m: m.group(1) + build.rstrip("/") + "/", shown_command)
                try:
                    run = subprocess.run(["bash", "-c", command], cwd=root, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    tally.fail("%s:%d: `%s` ran past %d s (doc-test commands must be cheap)"
                               % (shown, number, shown_command, COMMAND_TIMEOUT_S))
                    continue
                if run.returncode != 0:
                    output = run.stdout.strip().splitlines()
                    tail = "\n".join("    " + l for l in output[-15:]) or "    (no output)"
                    tally.fail("%s:%d: `%s` exited %d (build folder %s):\n%s"
                               % (shown, number, shown_command, run.returncode, build, tail))
                else:
                    tally.ok()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=os.path.dirname(here), help="the repository (default: the one holding this script)")
    p.add_argument("--build", default="build", help="the build folder that doc-test commands' build/ paths stand for (default build)")
    p.add_argument("--no-run", action="store_true", help="check links and the README's length only")
    p.add_argument("--allow-missing-file", action="append", default=[], metavar="PATH",
                   help="accept links to PATH (relative to the root; PATH/ for a folder) although it does not exist")
    a = p.parse_args()
    root = os.path.abspath(a.root)
    allowed = [x.replace(os.sep, "/") for x in a.allow_missing_file]
    allowed = [x[2:] if x.startswith("./") else x for x in allowed]
    tally = Tally()
    files = doc_files(root)
    if not files:
        tally.fail("%s: no README.md or docs/*.md" % root)
    check_links(root, files, allowed, tally)
    check_readme_length(root, tally)
    if not a.no_run:
        run_doc_tests(root, files, a.build, tally)
    for problem in tally.problems:
        print(problem)
    print("check_docs: %d passed, %d failed" % (tally.passed, len(tally.problems)))
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
