"""`rustkm cache` and `rustkm cache clean [--older-than DAYS] [--dry-run]`: the verbs of
rustkm.cache_report."""

from __future__ import annotations

import argparse
import time

from rustkm.cache_report import entries, human_size, last_use_age, remove_entry
from rustkm.errors import RustkmError
from rustkm.log import say


def cmd_list(args: argparse.Namespace) -> int:
    total = 0
    print(f"{'kind':20} {'size':>10} {'last use':>12}  path")
    for entry in entries():
        total += entry.size
        print(f"{entry.kind:20} {human_size(entry.size):>10} {last_use_age(entry.last_use):>12}  "
              f"{entry.path}")
    print(f"{'total':20} {human_size(total):>10}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    if args.older_than is not None and args.older_than < 0:
        raise RustkmError("--older-than takes a number of days, 0 or more")
    cutoff = time.time() - (args.older_than or 0) * 86400
    freed = 0
    for entry in entries():
        if not entry.regenerable or entry.last_use > cutoff:
            continue
        if args.dry_run:
            say(f"would remove {entry.kind} {entry.path} ({human_size(entry.size)})")
            freed += entry.size
        elif remove_entry(entry):
            say(f"removed {entry.kind} {entry.path} ({human_size(entry.size)})")
            freed += entry.size
        else:
            say(f"kept {entry.kind} {entry.path}: in use right now")
    say(f"{'would free' if args.dry_run else 'freed'} {human_size(freed)}")
    return 0


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("cache", help="what the cache holds; `cache clean` frees space")
    p.set_defaults(func=cmd_list)
    actions = p.add_subparsers(metavar="ACTION")
    clean = actions.add_parser("clean", help="remove what can be made again and is not in use "
                                             "(snapshots, initramfs images, guest programs, "
                                             "downloaded packages)")
    clean.add_argument("--older-than", type=float, metavar="DAYS",
                       help="only what was last used more than DAYS days ago")
    clean.add_argument("--dry-run", action="store_true", help="say what would go")
    clean.set_defaults(func=cmd_clean)
