#!/usr/bin/env python3
"""Turns `perf script` output (samples with call stacks) into two tables: the functions
samples end in (self), and the functions samples pass through (inclusive), optionally only
those matching a regular expression: a text flame graph for benches/load.sh PROFILE=1.
Usage: perf script -i FILE | perf_inclusive.py [MIN_PERCENT [REGEX]]"""
import collections
import re
import sys

FRAME = re.compile(r"^\s*[0-9a-f]+ (.*?)(\+0x[0-9a-f]+)? \((.*)\)$")


def main():
    minimum = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    only = re.compile(sys.argv[2]) if len(sys.argv) > 2 else None
    inclusive, leaf, total = collections.Counter(), collections.Counter(), 0
    for sample in sys.stdin.read().split("\n\n"):
        frames = [m.group(1) for m in map(FRAME.match, sample.splitlines()[1:]) if m]
        if not frames:
            continue
        total += 1
        leaf[frames[0]] += 1
        for name in set(frames):
            inclusive[name] += 1
    print(f"{total} samples\n\nself: where samples end, at least {minimum}%")
    print(" self%  function")
    for name, count in leaf.most_common():
        if 100 * count / total < minimum:
            break
        print(f"{100 * count / total:6.1f}  {name[:150]}")
    which = f"matching {only.pattern}" if only else "all"
    print(f"\ninclusive: samples passing through, at least {minimum}%, {which}")
    print(" incl%   self%  function")
    for name, count in inclusive.most_common():
        if 100 * count / total < minimum:
            break
        if only is None or only.search(name):
            print(f"{100 * count / total:6.1f}  {100 * leaf[name] / total:6.1f}  {name[:150]}")


if __name__ == "__main__":
    main()
