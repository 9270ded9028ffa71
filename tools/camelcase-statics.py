#!/usr/bin/env python3
"""camelcase-statics: renames the snake_case statics of C files to camelCase, each within its file.

  tools/camelcase-statics.py [--dry-run] [old=new ...] FILE.c...

For each file it reads the names the file defines for itself: static functions, static variables
(file scope and inside functions) and the types it declares (struct/enum/union tags and typedef
names). Every such name holding an underscore (and a lower-case letter, so macros are left alone)
becomes camelCase: load_group -> loadGroup, ca_names -> caNames. Occurrences are renamed word by
word in code and comments, never inside string or character literals (messages stay as they are)
and never after `.` or `->` (struct members keep their names). A new name that the file already
uses (a field, a JSON key) is refused and the old one kept (printed as "skip"); cmocka's test_* cases keep their names; give such a name
its own new name with old=new on the command line. Exported names, parameters and locals are
not touched. Prints one line per renaming. Compile and run the tests after: the script is textual.
"""
import re
import sys

IDENT = re.compile(r"[A-Za-z_]\w*")


def code_only(text):
    """The text with comments, string and character literals blanked (same length)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else " " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_brackets(s):
    return re.sub(r"\[[^\]]*\]", "", s)


def defined_names(code):
    """Names the file defines for itself: statics and local types."""
    names = []
    for m in re.finditer(r"^[ \t]*static\b([^;{]*)", code, re.M):
        decl = m.group(1)
        fn = re.match(r"[^()=]*?\b([A-Za-z_]\w*)\s*\(", decl)
        if fn and "=" not in decl.split("(")[0]:
            names.append(fn.group(1))  # a function (definition or prototype)
            continue
        # A variable: the declarators before any initializer, separated by commas.
        head = re.split(r"=", decl, 1)[0]
        for part in strip_brackets(head).split(","):
            ids = IDENT.findall(part)
            if ids:
                names.append(ids[-1])
    names += re.findall(r"\b(?:struct|enum|union)\s+([A-Za-z_]\w*)\s*\{", code)
    names += re.findall(r"^\}\s*([A-Za-z_]\w*)\s*;", code, re.M)  # typedef struct {...} name;
    for m in re.finditer(r"^typedef\b([^;{]*);", code, re.M):
        decl = m.group(1)
        fn = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)", decl) or re.search(
            r"\b([A-Za-z_]\w*)\s*\(", decl)
        ids = [fn.group(1)] if fn else IDENT.findall(strip_brackets(decl))[-1:]
        names += ids
    return names


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest if p)


def convertible(name):
    # test_* are cmocka test cases: their names are printed as the test's title and stay.
    return ("_" in name.strip("_") and re.search(r"[a-z]", name) and not name.startswith("_")
            and not name.startswith("test_"))


def rename(text, old, new):
    """Renames old to new in code and comments (not literals, not after . or ->)."""
    mask = code_only(text)
    # Comments count as code here: blank only the literals.
    lit = literal_spans(text)
    out, last = [], 0
    for m in re.finditer(r"\b%s\b" % re.escape(old), text):
        s = m.start()
        if any(a <= s < b for a, b in lit):
            continue
        before = mask[:s].rstrip()
        if before.endswith(".") or before.endswith("->"):
            continue
        out.append(text[last:s])
        out.append(new)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def literal_spans(text):
    spans, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text[i] in "\"'":
            c, j = text[i], i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            spans.append((i, j + 1))
            i = j + 1
        else:
            i += 1
    return spans


def main(argv):
    dry = "--dry-run" in argv
    chosen = dict(a.split("=", 1) for a in argv if "=" in a)
    files = [a for a in argv if a != "--dry-run" and "=" not in a]
    if not files:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in files:
        text = open(path, encoding="utf-8").read()
        seen = []
        for name in defined_names(code_only(text)):
            if convertible(name) and name not in seen:
                seen.append(name)
        for old in seen:
            new = chosen.get(old) or camel(old)
            if re.search(r"\b%s\b" % re.escape(new), text):
                print("%s: skip %s (%s is taken)" % (path, old, new))
                continue
            print("%s: %s -> %s" % (path, old, new))
            text = rename(text, old, new)
        if not dry:
            open(path, "w", encoding="utf-8").write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
