"""Checks Azure CLI command lines against the real CLI's parser, in one process, without running them.

usage: /usr/bin/python3 az_parse.py COMMANDS.jsonl

Each input line is a JSON array: one command line's arguments after `az`. Each is handed to the
installed azure-cli exactly as `az` would take it (command table, argument parser, then the
argument validators); the command itself is never run, and nothing is sent anywhere. A line is
accepted when it gets past the validators, or when a validator stops only because no account is
logged in (the same "Please run 'az login'" a real run without a login ends at). Anything else
(an unknown command, an unrecognized or misspelled argument, a bad value, a missing required
argument) is a rejection, with the CLI's own message.

Prints one JSON object per input line: {"args", "accepted", "reason", "message"}.
Run it with AZURE_CONFIG_DIR set to an empty temporary folder, so that no login, default or
extension of the machine's user takes part.
"""
import contextlib
import io
import json
import os
import sys
import tempfile

from azure.cli.core import get_default_cli
from azure.cli.core.commands import AzCliCommandInvoker


class _Parsed(Exception):
    """Raised where the CLI would start running the command."""


_reached = []


def _stop_before_running(self, expanded_arg, cmd_copy):  # pylint: disable=unused-argument
    _reached.append(True)
    raise _Parsed()


AzCliCommandInvoker._run_job = _stop_before_running  # pylint: disable=protected-access


def check(args):
    _reached.clear()
    # The CLI's logging handlers hold on to the stream they were made with, so the messages are
    # caught at the file descriptor rather than by swapping sys.stderr.
    with tempfile.TemporaryFile(mode='w+') as err:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                cli = get_default_cli()
                try:
                    cli.invoke(args)
                except (SystemExit, _Parsed):
                    pass
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        text = err.read()
    if _reached:
        return {'args': args, 'accepted': True, 'reason': 'parsed', 'message': ''}
    if "Please run 'az login'" in text:
        return {'args': args, 'accepted': True, 'reason': 'login', 'message': ''}
    lines = [l for l in text.splitlines() if l.strip()]
    cut = [l for l in lines if not l.startswith(('Examples from AI', 'https://aka.ms', 'Read more about'))]
    return {'args': args, 'accepted': False, 'reason': 'rejected', 'message': '\n'.join(cut[:12])}


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        commands = [json.loads(line) for line in f if line.strip()]
    for args in commands:
        print(json.dumps(check(args)), flush=True)


if __name__ == '__main__':
    main()
