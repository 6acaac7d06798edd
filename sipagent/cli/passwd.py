"""``sipacd passwd``: a console user's password hash for ``[users.<name>]``.

It asks twice (without echo) and prints a ``scrypt$...`` hash to paste as
``password_hash``; ``--stdin`` reads the password from one line of
standard input instead (for scripts).  The password itself is never
printed, logged or written anywhere.
"""
from __future__ import annotations

import getpass
import sys

from sipagent.store.pin import hash_secret

MIN_LENGTH = 8


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="sipacd passwd",
                                     description="hash a console password for [users.<name>]")
    parser.add_argument("--stdin", action="store_true",
                        help="read the password from standard input (one line)")
    args = parser.parse_args(argv)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("sipacd passwd: the two passwords differ", file=sys.stderr)
            return 2
    if len(password) < MIN_LENGTH:
        print(f"sipacd passwd: a password has at least {MIN_LENGTH} characters",
              file=sys.stderr)
        return 2
    print(hash_secret(password))
    return 0
