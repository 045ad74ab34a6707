#!/usr/bin/env python3
"""The Ray placer of ActorGraph's pieces (issue 17).

One Ray actor per piece ("keeper"), placed by a custom resource named after the piece's host
(`actorgraph_host_<HOST>` unless given) or by a node label (`ray start --labels KEY=VALUE`, Ray's
`label_selector`), `max_restarts=-1`. The keeper spawns the native piece
(`BINARY piece --listen NODE_IP:PORT --host HOST`, NODE_IP the address of the Ray node it landed on,
PORT 0 by default: the piece binds any free port), waits for its `piece listening on IP:PORT` line
(the port it bound), reports the incarnation, then `waitpid`s it and starts
a new one when it dies. The piece gets PR_SET_PDEATHSIG=SIGKILL, so it never outlives its keeper
(actor killed, raylet gone): a restarted keeper starts from a clean port. The keeper itself dies with
its node's raylet (PR_SET_PDEATHSIG on the keeper, or a pidfd watcher where the raylet is not the
parent: `raylet_guard` in its events), so a raylet killed takes the piece down within milliseconds and
the owner sees the connection close; Ray's health check then decides the re-placement.

This driver keeps one long-poll call per keeper and prints every event as one JSON line on stdout and
appends it to --events FILE (the owner, `actorgraph cluster`, tails that file and tells the compiled
graph where the host's piece listens now, through ActorGraphCluster's PlacerFeed; the owner, not
the placer, assigns epochs):

  {"event": "incarnation", "host": "b", "ip": "10.232.0.2", "port": 7100, "pid": 123, "piece_incarnation": 1,
   "keeper": "3f2a…", "keeper_pid": 120, "raylet_pid": 99, "raylet_guard": "pdeathsig", "keeper_restarts": 0, "t": 1733363000.123}
  {"event": "exit", "host": "b", "pid": 123, "status": "signal 9", ...}
  {"event": "keeper_restarted", "host": "b", "keeper": "…", ...}     (the driver saw a new keeper instance)
  {"event": "ready"}   once every piece has its first incarnation;   {"event": "down"} on the way out

  python3 actorgraph_placer.py --address 10.232.0.1:6390 --node-ip 10.232.0.1 \
      --binary /path/to/actorgraph --piece b [--piece c:7100@my_resource] [--piece d@actorgraph-host=d] --events FILE

Runs until SIGTERM/SIGINT, then stops every keeper (its piece gets SIGTERM, then SIGKILL) and exits.
The Ray cluster itself (ray start) is not this script's business; `actorgraph cluster up` starts one.
"""
import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import ray

PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the piece, between fork and exec: SIGKILL when the thread that started it (the keeper's
    watcher, alive as long as the keeper) goes away."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _forked_by_main_thread(parent, child):
    """Whether `child` is a child of `parent`'s main thread (PDEATHSIG follows the thread that forked)."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            return str(child) in f.read().split()
    except OSError:
        return False


def _die_with_raylet():
    """In the keeper: die the moment the raylet of this node dies, so that the piece (PDEATHSIG on
    the keeper's watcher thread) dies with it and the owner sees its connection close at once.
    Without this the keeper outlives a killed raylet until Ray's own check notices
    (RAY_raylet_death_check_interval_milliseconds, 1 s, plus the worker's exit): 1.4-2.6 s of a
    piece serving for a node Ray is about to declare dead.

    Ray 2.60 forks its workers from the raylet's main thread (checked in /proc/RAYLET/task/RAYLET/children),
    so PR_SET_PDEATHSIG=SIGKILL is exact: the kernel kills the keeper when the raylet exits, for any
    reason. Where the parent is not the raylet's main thread (another launcher, a wrapper), a watcher
    thread blocks in poll() on a pidfd of the raylet ($RAY_RAYLET_PID) and SIGKILLs the keeper when it
    becomes readable (the piece follows by its own PDEATHSIG). Returns (raylet pid or None, "pdeathsig" | "pidfd" | "none")."""
    me, ppid = os.getpid(), os.getppid()
    try:
        expected = int(os.environ.get("RAY_RAYLET_PID", "0"))
    except ValueError:
        expected = 0
    if _comm(ppid) == "raylet" and expected in (0, ppid) and _forked_by_main_thread(ppid, me):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            # The raylet may have died between getppid() and prctl(): then the signal never comes.
            if os.getppid() != ppid:
                os.kill(me, signal.SIGKILL)
            return ppid, "pdeathsig"
    raylet = expected or (ppid if _comm(ppid) == "raylet" else 0)
    if raylet <= 0 or _comm(raylet) != "raylet" or not hasattr(os, "pidfd_open"):
        return (raylet or None), "none"
    try:
        pidfd = os.pidfd_open(raylet)
    except ProcessLookupError:  # gone since the check above
        os.kill(me, signal.SIGKILL)
    except OSError:
        return raylet, "none"
    threading.Thread(target=_watch_raylet, args=(pidfd,), name="raylet-watcher", daemon=True).start()
    return raylet, "pidfd"


def _watch_raylet(pidfd):
    import select
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while not poller.poll():
        pass
    # The raylet is gone: SIGKILL the keeper's whole process (its piece follows by PDEATHSIG).
    os.kill(os.getpid(), signal.SIGKILL)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=4)
class PieceKeeper:
    def __init__(self, host, port, binary, extra_args):
        self.host = host
        self.port = port
        self.binary = binary
        self.extra_args = list(extra_args)
        self.instance = uuid.uuid4().hex[:12]
        self.ip = ray.util.get_node_ip_address()
        self.cond = threading.Condition()
        self.events = []
        self.stopping = False
        self.proc = None
        self.piece_incarnation = 0
        ctx = ray.get_runtime_context()
        self.reconstructed = bool(getattr(ctx, "was_current_actor_reconstructed", False))
        self.raylet_pid, self.raylet_guard = _die_with_raylet()
        self._kill_stale_piece()
        self.watcher = threading.Thread(target=self._watch, name="piece-watcher", daemon=True)
        self.watcher.start()

    # A piece of an earlier keeper instance on this node that is somehow still alive (PDEATHSIG
    # covers the usual cases) would hold the port: stop it, by the pid this keeper's host recorded.
    def _pidfile(self):
        return f"/tmp/actorgraph-placer-{self.host}-{self.ip}-{self.port}.pid"

    def _kill_stale_piece(self):
        try:
            with open(self._pidfile()) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            if b"piece" in cmd and self.binary.encode() in cmd:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def _emit(self, event, **fields):
        record = {"event": event, "host": self.host, "keeper": self.instance, "keeper_pid": os.getpid(),
                  "raylet_pid": self.raylet_pid, "raylet_guard": self.raylet_guard, "reconstructed": self.reconstructed, "t": time.time()}
        record.update(fields)
        with self.cond:
            self.events.append(record)
            self.cond.notify_all()

    def _watch(self):
        quick_deaths = 0
        while not self.stopping:
            started = time.monotonic()
            args = [self.binary, "piece", "--listen", f"{self.ip}:{self.port}", "--host", self.host] + self.extra_args
            try:
                proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=_die_with_parent, bufsize=0)
            except OSError as error:
                self._emit("spawn_failed", error=str(error))
                time.sleep(1.0)
                continue
            self.proc = proc
            self.piece_incarnation += 1
            try:
                with open(self._pidfile(), "w") as f:
                    f.write(str(proc.pid))
            except OSError:
                pass
            listening = None
            tail = []
            while True:
                line = proc.stdout.readline()
                if not line:
                    break
                text = line.decode(errors="replace").rstrip()
                tail = (tail + [text])[-5:]
                if text.startswith("piece listening on "):
                    listening = text[len("piece listening on "):]
                    break
            if listening is not None:
                ip, _, port = listening.rpartition(":")
                self._emit("incarnation", ip=ip, port=int(port), pid=proc.pid, piece_incarnation=self.piece_incarnation,
                           spawn_ms=round((time.monotonic() - started) * 1000, 3))
                # Keep draining what the piece prints (its pipe must never fill).
                threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
            status = proc.wait()
            how = f"signal {-status}" if status < 0 else f"exit {status}"
            self._emit("exit", pid=proc.pid, status=how, piece_incarnation=self.piece_incarnation,
                       output=tail if listening is None else [])
            if self.stopping:
                break
            # A piece that cannot start (bad binary, port taken) must not spin: back off.
            quick_deaths = quick_deaths + 1 if time.monotonic() - started < 0.5 else 0
            if quick_deaths > 3:
                time.sleep(min(2.0, 0.1 * quick_deaths))

    @staticmethod
    def _drain(proc):
        try:
            for line in proc.stdout:
                sys.stdout.write("piece: " + line.decode(errors="replace"))
        except (OSError, ValueError):
            pass

    def next_events(self, instance, index, timeout):
        """Events from `index` on if `instance` is this keeper, else all of them (a restarted keeper);
        waits up to `timeout` seconds for one."""
        start = index if instance == self.instance else 0
        with self.cond:
            if len(self.events) <= start:
                self.cond.wait(timeout)
            return self.instance, self.events[start:]

    def stop(self):
        self.stopping = True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return True


def parse_piece(spec):
    # HOST[:PORT][@RESOURCE | @LABEL_KEY=LABEL_VALUE]; PORT 0 (the default): any free port, reported.
    placement = None
    if "@" in spec:
        spec, placement = spec.split("@", 1)
    host, _, port = spec.partition(":")
    if not host:
        raise argparse.ArgumentTypeError(f"--piece must be HOST[:PORT][@RESOURCE|@KEY=VALUE] (got '{spec}')")
    if placement and "=" in placement:
        key, _, value = placement.partition("=")
        return host, int(port or 0), {"label_selector": {key: value}}
    return host, int(port or 0), {"resources": {placement or f"actorgraph_host_{host}": 1}}


def main():
    parser = argparse.ArgumentParser(description="Place ActorGraph pieces with Ray: one keeper actor per piece.")
    parser.add_argument("--address", required=True, help="the Ray cluster (GCS) address, IP:PORT")
    parser.add_argument("--node-ip", required=True, help="this driver's node IP address (_node_ip_address)")
    parser.add_argument("--binary", required=True, help="the program that serves pieces (`BINARY piece --listen ...`)")
    parser.add_argument("--piece", action="append", type=parse_piece, required=True,
                        help="HOST[:PORT][@RESOURCE|@KEY=VALUE] (a Ray resource, default actorgraph_host_HOST, or a node label; PORT 0 or none: any free port), repeatable")
    parser.add_argument("--events", help="append every event as a JSON line to this file too")
    parser.add_argument("--namespace", default="actorgraph")
    args = parser.parse_args()
    # A parent that blocked these (threads of many runtimes do) must not make `down` wait for SIGKILL.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    events_file = open(args.events, "a", buffering=1) if args.events else None

    def emit(record):
        line = json.dumps(record, separators=(",", ":"))
        print(line, flush=True)
        if events_file:
            events_file.write(line + "\n")
            events_file.flush()

    ray.init(address=args.address, _node_ip_address=args.node_ip, namespace=args.namespace,
             logging_level="WARNING", log_to_driver=False)
    # After ray.init, which installs its own SIGTERM handler (the driver would otherwise ignore `down`).
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emit({"event": "placer", "pid": os.getpid(), "address": args.address, "t": time.time()})
    keepers = {}
    for host, port, placement in args.piece:
        keeper = PieceKeeper.options(name=f"piece-{host}", **placement).remote(host, port, args.binary, [])
        keepers[host] = {"actor": keeper, "instance": None, "index": 0, "ref": None, "seen": False}

    ready = False
    while not stop.is_set():
        for host, k in keepers.items():
            if k["ref"] is None:
                k["ref"] = k["actor"].next_events.remote(k["instance"], k["index"], 0.5)
        refs = {k["ref"]: host for host, k in keepers.items()}
        done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
        for ref in done:
            host = refs[ref]
            k = keepers[host]
            k["ref"] = None
            try:
                instance, new = ray.get(ref)
            except Exception as error:  # the keeper died mid-call and could not be retried: ask again
                emit({"event": "keeper_call_failed", "host": host, "error": type(error).__name__, "t": time.time()})
                continue
            if instance != k["instance"]:
                if k["instance"] is not None:
                    emit({"event": "keeper_restarted", "host": host, "keeper": instance, "t": time.time()})
                k["instance"] = instance
                k["index"] = 0
            k["index"] += len(new)
            for record in new:
                emit(record)
                if record["event"] == "incarnation":
                    k["seen"] = True
        if not ready and all(k["seen"] for k in keepers.values()):
            ready = True
            emit({"event": "ready", "t": time.time()})

    # Every keeper stops its piece (SIGTERM, then SIGKILL after 5 s) at once; then the actors go.
    try:
        ray.get([k["actor"].stop.remote() for k in keepers.values()], timeout=10)
    except Exception:
        pass
    for k in keepers.values():
        ray.kill(k["actor"], no_restart=True)
    emit({"event": "down", "t": time.time()})
    ray.shutdown()


if __name__ == "__main__":
    main()
