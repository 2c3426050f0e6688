"""The head start: a stdio ``vmcp start`` spawns its backends before it imports the gateway.

Importing the command line, the configuration models and the gateway takes several hundred
milliseconds, and no backend could be spawned before the configuration was checked: every
backend's own start-up came after all of it. The front snapshot (:mod:`vmcp.faststart`)
therefore also records how the last start with the same key spawned its stdio backends
(:data:`SPAWNS`): the command, arguments, working folder and added environment exactly as
the configuration writes them, with ``${VAR}`` unexpanded, so no value from the environment
is ever written down. When the key matches, :func:`spawn` starts those backends as soon
as the fast start has answered what it serves, as the stdio transport would have, and each
one waits here as a :class:`HeadStart`.

The gateway then checks, backend by backend, what it would spawn itself (the program, its
arguments, its whole environment, its working folder): only a head start spawned with
exactly that is taken (:func:`claim`), as if it had just been spawned. Every other one is
killed once the mounts are up (:func:`release`), or when the process exits. So what the
snapshot records can make a start slower, never different.

Like :mod:`vmcp.faststart`, this module imports nothing but ``os`` and ``sys``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself is not imported: its import costs the fast start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

#: the snapshot key of the recorded spawns (a list of templates, see :func:`template`)
SPAWNS = "spawns"
#: the signals Python ignores for itself and a spawned program gets back at their default
_RESET_SIGNALS = ("SIGPIPE", "SIGXFSZ")


class HeadStart:
    """A backend spawned from the snapshot, waiting to be claimed: its launch and pipes."""

    __slots__ = ("cwd", "env", "pid", "pidfd", "program", "report", "stderr", "stdin",
                 "stdout")

    def __init__(self, program: list[str], env: dict[str, str], cwd: str | None, pid: int,
                 pidfd: int, report: int, stdin: int, stdout: int, stderr: int) -> None:
        #: the command and its arguments, as spawned
        self.program = program
        self.env = env
        self.cwd = cwd
        self.pid = pid
        #: a descriptor that becomes readable when the process exits
        self.pidfd = pidfd
        #: the pipe the child reports a failed exec on (it closes on a successful one)
        self.report = report
        #: our ends of the backend's standard streams
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr

    def kill(self) -> None:
        """Kill the backend's process group, reap it and close every descriptor."""
        # SIGKILL (the signal module is not imported): the process itself, which may not
        # have made its own group yet, then whatever it started in its group
        _quietly(os.kill, self.pid, 9)
        _quietly(os.killpg, self.pid, 9)
        _quietly(os.waitpid, self.pid, 0)
        for fd in (self.pidfd, self.report, self.stdin, self.stdout, self.stderr):
            _quietly(os.close, fd)

    def executed(self) -> bool:
        """True when the child's exec succeeded (waits for it to be over, if need be)."""
        failed = os.read(self.report, 1)
        os.close(self.report)
        self.report = -1
        return not failed


def _quietly(call: Any, *args: int) -> None:
    """``call(*args)``, where an OSError means there is nothing left to do."""
    try:
        call(*args)
    except OSError:
        return


#: the head starts nobody claimed yet
WAITING: list[HeadStart] = []


def template(command: str, args: list[str], cwd: str | None,
             env: Mapping[str, str]) -> dict[str, Any]:
    """The record of one spawn, as the configuration writes it (``${VAR}`` unexpanded)."""
    return {"command": command, "args": list(args), "cwd": cwd,
            "env": [[key, value] for key, value in env.items()]}


def spawn(templates: Any, environ: Mapping[str, str]) -> None:
    """Spawn every recorded backend (a template that is malformed, or whose program cannot
    be run, is skipped: the gateway spawns it and reports what goes wrong)."""
    if not isinstance(templates, list) or not hasattr(os, "pidfd_open"):
        return
    for recorded in templates:
        try:
            launch = _expand(recorded, environ)
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        try:
            head = _spawn(*launch)
        except OSError:
            continue
        if head is not None:
            WAITING.append(head)
    if WAITING:
        import atexit  # a builtin module: nothing to load

        atexit.register(release)


def claim(program: list[str], env: Mapping[str, str], cwd: str | None) -> HeadStart | None:
    """The head start spawned with exactly this launch, now the caller's; None when none
    was (or it has exited since)."""
    for index, head in enumerate(WAITING):
        if head.program == program and head.env == env and head.cwd == cwd:
            del WAITING[index]
            try:
                if head.executed() and os.waitpid(head.pid, os.WNOHANG) == (0, 0):
                    return head
            except ChildProcessError:
                pass
            head.kill()  # it failed or died already: the caller spawns anew and sees why
            return None
    return None


def release() -> None:
    """Kill every head start nobody claimed."""
    while WAITING:
        WAITING.pop().kill()


def _expand(recorded: dict[str, Any], environ: Mapping[str, str]
            ) -> tuple[list[str], dict[str, str], str | None]:
    """The program, environment and working folder of a recorded spawn, as the stdio
    transport builds them (see ``Mount.backend_env`` and ``StdioTransport.connect``)."""
    env = dict(environ)
    env.setdefault("VMCP_PYTHON", sys.executable)
    for key, value in recorded["env"]:
        env[_str(key)] = expand(_str(value), env)
    program = [expand(_str(part), env) for part in (recorded["command"], *recorded["args"])]
    cwd = recorded["cwd"]
    return program, env, None if cwd is None else (expand(_str(cwd), env) or None)


def _str(value: Any) -> str:
    if type(value) is not str:
        raise TypeError("not a string")
    return value


def expand(value: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` with the variable's value (empty when unset), as
    :func:`vmcp.config.expand_vars` does, without importing ``re``."""
    if "${" not in value:
        return value
    parts = []
    done = 0
    at = value.find("${")
    while at >= 0:
        end = value.find("}", at + 2)
        name = value[at + 2:end] if end >= 0 else ""
        if _is_name(name):
            parts += (value[done:at], env.get(name, ""))
            done = end + 1
            at = value.find("${", done)
        else:
            at = value.find("${", at + 1)
    parts.append(value[done:])
    return "".join(parts)


def _is_name(name: str) -> bool:
    """True for a name ``[A-Za-z_][A-Za-z0-9_]*``."""
    return bool(name) and name.isascii() and not name[0].isdigit() \
        and name.replace("_", "a").isalnum()


def _spawn(program: list[str], env: dict[str, str], cwd: str | None) -> HeadStart | None:
    """Spawn ``program`` as the stdio transport does: its own session and process group,
    its standard streams on pipes, no other descriptor, default signal handling. None when
    no process could be watched."""
    paths = _candidates(program[0], env)
    pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr: not inheritable
    report_read, report_write = os.pipe()  # closed by a successful exec
    inherited = _inherited_fds()
    pid = os.fork()
    if pid == 0:  # the child: set up, then exec; it never returns to the caller
        try:
            _exec(program, env, cwd, paths, [pipes[0][0], pipes[1][1], pipes[2][1]],
                  inherited)
        finally:
            try:
                os.write(report_write, b"!")
            finally:
                os._exit(127)
    for fd in (pipes[0][0], pipes[1][1], pipes[2][1], report_write):
        os.close(fd)
    ours = (pipes[0][1], pipes[1][0], pipes[2][0])
    # Whether the exec succeeded is read when the head start is claimed, long after: the
    # next backend is spawned meanwhile, not once this one's exec is over.
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        for fd in (report_read, *ours):
            os.close(fd)
        return None
    return HeadStart(program, env, cwd, pid, pidfd, report_read, *ours)


def _exec(program: list[str], env: dict[str, str], cwd: str | None, paths: list[str],
          streams: list[int], inherited: list[int]) -> None:
    """In the forked child: become a session leader with ``streams`` as its standard
    streams and nothing else open, then exec the first of ``paths`` that can be run."""
    os.setsid()
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            continue
    import _signal  # builtin: the signal module would import enum

    for name in _RESET_SIGNALS:
        _signal.signal(getattr(_signal, name), _signal.SIG_DFL)
    if cwd is not None:
        os.chdir(cwd)
    for path in paths:
        try:
            os.execve(path, program, env)
        except OSError:
            continue


def _candidates(command: str, env: Mapping[str, str]) -> list[str]:
    """Where ``command`` may be, searched on the backend's own PATH as ``subprocess`` does."""
    if os.path.dirname(command):
        return [command]
    path = env.get("PATH", os.defpath)
    return [os.path.join(folder, command) for folder in path.split(os.pathsep)]


def _inherited_fds() -> list[int]:
    """Descriptors above 2 a parent left inheritable: they must not reach the backend (as
    ``close_fds`` keeps them from one the transport spawns)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            continue  # the descriptor listdir itself used
    return found
