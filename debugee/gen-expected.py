#!/usr/bin/env python3
"""Run every debugee under memcheck and print/record the figures.

Usage: python3 gen-expected.py [--write]
  Without --write: prints the figures and the header block for each program.
  With --write: rewrites debugee/expected.json and the "Expected memcheck
  figures:" block at the end of each source's first comment.
Requires `make` to have been run first. If --write changes the number of
lines in a header, source line numbers shift: run `make` and --write again
until the output is stable. Not used by heapspec itself.
"""
import json, os, re, signal, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = {  # build name -> source file
    "definite": "definite.c", "indirect": "indirect.c", "reachable": "reachable.c",
    "possible": "possible.c", "realloc": "realloc.c", "aligned": "aligned.c",
    "cxx": "cxx.cpp", "threads": "threads.c", "libc": "libc.c",
    "crash": "crash.c", "bench": "bench.c",
}
VG = ["valgrind", "--leak-check=full", "--show-leak-kinds=all",
      "--errors-for-leak-kinds=definite,indirect,possible", "--num-callers=30"]
KINDS = {"definitely lost": "definite", "indirectly lost": "indirect",
         "possibly lost": "possible", "still reachable": "reachable"}

def num(s):
    return int(s.replace(",", ""))

def run(name):
    src = PROGRAMS[name]
    p = subprocess.run(VG + [os.path.join(HERE, "build", name)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = [re.sub(r"^==\d+== ?", "", l) for l in p.stderr.splitlines()]
    text = "\n".join(lines)
    r = {}
    m = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated", text)
    r["allocations"], r["frees"], r["bytesAllocated"] = map(num, m.groups())
    m = re.search(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks", text)
    r["inUseAtExit"] = {"bytes": num(m.group(1)), "blocks": num(m.group(2))}
    for label, key in KINDS.items():
        m = re.search(r"^\s*" + label + r": ([\d,]+) bytes in ([\d,]+) blocks", text, re.M)
        r[key] = {"bytes": num(m.group(1)), "blocks": num(m.group(2))} if m else {"bytes": 0, "blocks": 0}
    if p.returncode < 0:
        r["exitCode"], r["signal"] = None, signal.Signals(-p.returncode).name
    else:
        r["exitCode"], r["signal"] = p.returncode, None
    sites = []
    rec = re.compile(r"^([\d,]+)(?: \(([\d,]+) direct, ([\d,]+) indirect\))? bytes in ([\d,]+) blocks are "
                     r"(definitely lost|indirectly lost|possibly lost|still reachable) in loss record")
    frame = re.compile(r"^\s+(?:at|by) 0x[0-9A-F]+: (.*?) \((.*?):(\d+)\)$")
    i = 0
    while i < len(lines):
        m = rec.match(lines[i])
        if not m:
            i += 1
            continue
        direct = num(m.group(2)) if m.group(2) else num(m.group(1))
        site = {"kind": KINDS[m.group(5)], "bytes": direct, "blocks": num(m.group(4))}
        if m.group(3):
            site["indirectBytes"] = num(m.group(3))
        i += 1
        while i < len(lines) and lines[i].strip():
            f = frame.match(lines[i])
            if f and f.group(2) == src and "fn" not in site:
                site.update(fn=f.group(1), file=f.group(2), line=int(f.group(3)))
            i += 1
        sites.append(site)
    r["sites"] = sites
    return r, text

def block(r):
    def kb(k):
        return "%d bytes in %d blocks" % (r[k]["bytes"], r[k]["blocks"])
    out = ["total heap usage: %d allocs, %d frees, %d bytes allocated"
           % (r["allocations"], r["frees"], r["bytesAllocated"]),
           "in use at exit:   " + kb("inUseAtExit"),
           "definitely lost:  " + kb("definite"),
           "indirectly lost:  " + kb("indirect"),
           "possibly lost:    " + kb("possible"),
           "still reachable:  " + kb("reachable"),
           "exit: " + ("signal %s" % r["signal"] if r["signal"] else "code %d" % r["exitCode"])]
    if r["sites"]:
        out.append("loss records (memcheck's order; first frame in this file):")
    for s in r["sites"]:
        extra = " (+%d indirect)" % s["indirectBytes"] if "indirectBytes" in s else ""
        out.append("  %s %d bytes in %d blocks%s at %s (%s:%d)"
                   % (s["kind"], s["bytes"], s["blocks"], extra, s["fn"], s["file"], s["line"]))
    return out

def rewrite_header(src, blk):
    path = os.path.join(HERE, src)
    lines = open(path).read().split("\n")
    start = next(i for i, l in enumerate(lines) if "Expected memcheck figures" in l)
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "*/")
    lines[start + 1:end] = [" *   " + b for b in blk]
    open(path, "w").write("\n".join(lines))

def main():
    write = "--write" in sys.argv
    results = {}
    for name, src in PROGRAMS.items():
        r, _ = run(name)
        results[name] = r
        blk = block(r)
        print("== %s" % name)
        print("\n".join(blk))
        if write:
            rewrite_header(src, blk)
    if write:
        with open(os.path.join(HERE, "expected.json"), "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")

if __name__ == "__main__":
    main()
