#!/usr/bin/env python3
"""ptyshell.py: drive an interactive zsh or fish in a pseudo-terminal, as a
person at a keyboard would, and report what tab completion did.

    ptyshell.py SHELL RCDIR LINE...

SHELL is zsh or fish; RCDIR holds the start-up file written by the caller
(tests/completion-shells.bats): zsh's .zshrc (ZDOTDIR) or fish's
fish/config.fish (XDG_CONFIG_HOME).  That file binds two keys and prints
@@READY@@ once set up:

    Ctrl-G   prints "@@BUF<" + the command line + ">@@", then with fish the
             completions the shell has for that line ("@@ITEM<word>@@" each,
             from complete -C), and clears the line
    Tab      completes, as usual

Each LINE is typed character by character; a tab character in it is the Tab
key.  After a LINE that ends in a tab (zsh lists the candidates on the
terminal, marked up by the list-colors style of the start-up file), Ctrl-G
is typed, and what the terminal showed in between is parsed.  For each LINE
it prints

    LINE <the line typed>
    BUFFER <the command line after completion>
    ITEM <candidate>              one line per candidate listed

Every wait is for a marker the shell prints, bounded by a time-out (a failure,
exit 1), never a sleep.
"""

import os
import pty
import re
import select
import signal
import struct
import sys
import time
import fcntl
import termios

TIMEOUT = 30.0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\x1b[=>]")


def read_until(fd, marker, buf):
    """Read from fd until marker (a compiled regex over bytes) matches; return
    (match, text before and including it); buf holds unread leftovers."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        m = marker.search(buf[0])
        if m:
            text = buf[0][: m.end()]
            buf[0] = buf[0][m.end():]
            return m, text
        left = deadline - time.monotonic()
        if left <= 0:
            sys.stderr.write("ptyshell: timed out waiting for %r; the terminal showed:\n%s\n"
                             % (marker.pattern, clean(buf[0])[-3000:]))
            sys.exit(1)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                sys.stderr.write("ptyshell: the shell exited; it showed:\n%s\n"
                                 % clean(buf[0])[-3000:])
                sys.exit(1)
            buf[0] += data


def clean(data):
    """The text of terminal output: escape sequences and carriage returns gone."""
    text = ANSI.sub(b"", data).replace(b"\r", b"")
    return text.decode("utf-8", "replace")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("zsh", "fish"):
        sys.stderr.write("usage: ptyshell.py zsh|fish RCDIR LINE...\n")
        sys.exit(2)
    shell, rcdir, lines = sys.argv[1], sys.argv[2], sys.argv[3:]
    env = dict(os.environ, TERM="xterm", COLUMNS="200", LINES="100")
    if shell == "zsh":
        env["ZDOTDIR"] = rcdir
        argv = ["zsh", "-i"]
    else:
        env["XDG_CONFIG_HOME"] = rcdir
        argv = ["fish", "-i"]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 100, 200, 0, 0))
    buf = [b""]
    ready = re.compile(rb"@@READY@@")
    # (no nested repetition: the regex runs again on every partial read, and
    # one of the form ((?:...<.*?>...)*) backtracked exponentially over a
    # half-arrived list of candidates, spinning past every time-out)
    dump = re.compile(rb"@@BUF<(.*?)>@@(.*?)@@END@@", re.S)
    try:
        read_until(fd, ready, buf)
        for line in lines:
            os.write(fd, line.encode())
            os.write(fd, b"\x07")
            m, text = read_until(fd, dump, buf)
            shown = text[: m.start()]
            if os.environ.get("PTYSHELL_DEBUG"):
                sys.stderr.write("--- shown:\n%r\n" % shown)
            print("LINE " + line.replace("\t", "<TAB>"))
            print("BUFFER " + clean(m.group(1)))
            for item in re.findall(rb"@@ITEM<(.*?)>@@", m.group(2), re.S):
                print("ITEM " + clean(item))
            # zsh's listing: every candidate between <NO> and <EC> (list-colors)
            # (a cell may be "word  -- description", or a description alone
            # when zsh groups the spellings of one option)
            for item in re.findall(rb"<NO>(.*?)<EC>", shown, re.S):
                item = re.split(r"\s+-- ", " " + clean(item).strip() + " ", 1)[0].strip()
                if item:
                    print("ITEM " + item)
        sys.stdout.flush()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
