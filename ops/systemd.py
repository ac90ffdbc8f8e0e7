"""What the systemd unit (deploy/myapp@.service) needs beyond plain gunicorn:
`systemctl reload` by a new master, as restart.sh does it, the hook that
hands the socket systemd gave gunicorn on to that new master, and the drain
before `systemctl stop` (ExecStop runs `python ops/systemd.py drain MAINPID`).

ExecReload runs `python ops/systemd.py reload MAINPID PIDFILE`. A new master
beside the old one (USR2) loads the code and settings on disk; once its
workers answer, the old one is retired (TERM, graceful), and the new one takes
the pidfile, from which systemd learns the new main pid (PIDFile=). When the
new code does not load, the reload fails and the old master serves on.
"""

import fcntl
import os
import signal
import sys
from pathlib import Path


def pre_exec(server):
    """gunicorn's pre_exec hook, in the new master just before its exec: put
    the sockets systemd passed back at fds 3, 4... gunicorn 27 has moved them
    elsewhere, yet tells the new master LISTEN_FDS as if they were still there
    (it would die of "Bad file descriptor")."""
    if not server.systemd:
        return
    fds = [listener.fileno() for listener in server.LISTENERS]
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3 + len(fds)) for fd in fds]
    for fd in fds:
        os.set_inheritable(fd, False)
    for number, fd in enumerate(parked):
        os.dup2(fd, 3 + number, inheritable=True)


def reload(old, pidfile):
    """Replace master old by a new one that loads the code on disk; return
    once the new one serves and owns pidfile. Raise a Failure, old serving
    on, when the new code does not start."""
    # Imported here: gunicorn.conf.py imports this module for pre_exec, and
    # every start of gunicorn would load serverctl's modules (about 10 ms).
    from ops import serverctl, settings
    from ops.serverctl import Failure, read_pid, started, wait_until

    # The socket unit, not HOST, sets the address: ask on loopback.
    values = dict(settings.read(), HOST="127.0.0.1")
    earlier = Path(f"{pidfile}.2")
    what = "the reload before this one to finish"
    wait_until(lambda: not started(read_pid(earlier)), values["START_TIMEOUT"], what)
    new, workers = None, set()

    def serving():
        nonlocal new
        new = new or min(serverctl.new_masters(old, pidfile), default=None)
        if new and not started(new):
            raise Failure("it exited (journalctl -u the unit says why)")
        if new and (worker := serverctl.crashed(new, workers)):
            raise Failure(f"its worker {worker} exited (journalctl says why)")
        return new if new and serverctl.answering(new, values) else None

    serverctl.signal_all([old], signal.SIGUSR2)
    try:
        wait_until(serving, values["START_TIMEOUT"], "the new master to answer")
    except BaseException as error:
        serverctl.shield()
        serverctl.end(sorted({new} - {None} | serverctl.new_masters(old, pidfile)), 5)
        raise Failure(
            f"the new code did not start: {error}; pid {old} serves on"
        ) from None
    serverctl.signal_all([old], signal.SIGTERM)

    def promoted():
        return not started(old) and read_pid(pidfile) == new

    what = f"the old master (pid {old}) to finish its requests"
    wait_until(promoted, values["GRACEFUL_TIMEOUT"] + 10, what)
    serverctl.say(f"reloaded: pid {new} serves, pid {old} retired")


def drain():
    """Before systemd's TERM, have /health/ready answer 503 for DRAIN_SECONDS
    while the server serves all else, as stop.sh does."""
    from ops import serverctl, settings

    values = settings.read(strict=False)
    serverctl.drain([values["PORT"]], values["DRAIN_SECONDS"])


def main(argv):
    """`systemd.py reload MAINPID PIDFILE` or `systemd.py drain [MAINPID]`;
    return the exit code."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ops import serverctl, settings
    from ops.serverctl import Failure

    reloading = argv[1:2] == ["reload"] and len(argv) == 4 and argv[2].isdigit()
    draining = argv[1:2] == ["drain"] and all(pid.isdigit() for pid in argv[2:3])
    draining = draining and len(argv) <= 3
    if not (reloading or draining):
        serverctl.warn("usage: systemd.py reload MAINPID PIDFILE | drain [MAINPID]")
        return 2
    try:
        if reloading:
            reload(int(argv[2]), Path(argv[3]))
        elif len(argv) == 3:  # no MAINPID: the server has ended, restart at once
            drain()
    except (Failure, settings.SettingError) as error:
        serverctl.warn(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
