"""Types a line into an interactive psql, presses Tab, and checks that the
completion psql inserts contains the expected word.

Usage: complete.py LINE EXPECTED   (connection from the PG* variables)
"""

import os
import pty
import select
import sys
import time


def main() -> int:
    line, expected = sys.argv[1], sys.argv[2]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"
        os.execvp("psql", ["psql", "-X"])
    seen = b""

    def read_for(seconds: float) -> None:
        nonlocal seen
        end = time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    return

    read_for(3)
    os.write(fd, line.encode() + b"\t")
    read_for(3)
    os.write(fd, b"\x03\\q\n")
    read_for(1)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    text = seen.decode(errors="replace")
    after = text.split(line, 1)[-1] if line in text else ""
    if expected in line + after:
        return 0
    print(f"psql did not complete to {expected!r}; terminal showed: {text[-300:]!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
