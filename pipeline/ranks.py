"""The Train stage on N data-parallel MPI ranks: the launcher, and each rank's entry point.

`launch(task, folder)` runs in the Luigi worker, which holds the folder's lock: it starts
`mpiexec -n N python -c "...pipeline.ranks.main..." CONFIG FOLDER`, relays rank 0's log and progress lines,
forwards Ctrl-C / SIGTERM to the ranks (they then write a checkpoint together) and waits. Rank
0 alone writes files; its summary comes back through `RESULT`, read only after every rank has
exited cleanly, and the worker then writes meta.json and the marker as for one process.

A rank that fails prints `rank R: error: ...` and aborts the job, so the others do not wait
for it forever; a rank killed from outside is reported by mpiexec with its pid, which the
ranks announced at start. A rank that stops answering without dying (paused, cut off) is
noticed by the others' stall watch (model/stall.py), which aborts the job after
`train.stall_timeout_s` or more; ranks that do not all start within that bound (a host that
does not answer) are stopped by the launcher. Each becomes one line naming the rank or host
(pipeline/ranks_job.py).
"""
import importlib.util
import itertools
import json
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from model.ranks import check_split
from stages import persist
from stages.atomic import atomic_write_text
from stages.errors import UserError

from .ranks_job import Job

INSTALL = "pip install -e '.[mpi]' (mpi4py and the MPICH wheel), or mpi4py built against your MPI"
RESULT = ".ranks-result.json"
FLUSHED = ".ranks-flushed"   # the worker's answer to rank 0's `flush N`: N, once flushed
log = logging.getLogger("pipeline")
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
GRACE_S = 5.0      # a rank that found a stall waits this long (at most) for the others to say so
EXIT_S = 10.0      # then aborts the job; if MPI's abort itself hangs (a lost peer), it exits


def mpiexec():
    """Path of the MPI launcher that goes with this Python (the wheel's first), or UserError."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.is_file() else shutil.which("mpiexec")
    if found is None or importlib.util.find_spec("mpi4py") is None:
        raise UserError(f"train.processes > 1 needs MPI, which is not installed: {INSTALL}")
    return found


def command(cfg, folder):
    """The mpiexec command line for this config's ranks (one BLAS thread each)."""
    t = cfg.train
    cmd = [mpiexec(), "-n", str(t.processes)]
    if t.hosts:
        cmd += ["-hosts", ",".join(t.hosts)]
    for name, value in ONE_THREAD.items():
        cmd += ["-genv", name, value]
    # not -m: the package imports this module; Train is handed in (ranks.py never imports tasks.py)
    entry = ("import sys; from pipeline.ranks import main; from pipeline.tasks import Train; "
             "main(Train, *sys.argv[1:])")
    return cmd + [sys.executable, "-c", entry, str(Path(cfg.path).resolve()), str(folder)]


def launch(task, folder):
    """Train into `folder` on the config's ranks; returns rank 0's summary (for meta.json)."""
    cfg = task.cfg
    try:
        check_split(cfg.train.batch_size, cfg.train.processes)
    except ValueError as e:
        raise UserError(str(e)) from None
    result = Path(folder, RESULT)
    result.unlink(missing_ok=True)
    Path(folder, FLUSHED).unlink(missing_ok=True)
    job = Job(cfg.train)
    with tempfile.TemporaryFile("w+") as err:   # a file, not a pipe: it can never fill and block
        # Its own session: a terminal's Ctrl-C reaches the ranks only through the handler below,
        # which mpiexec passes on to every rank; they stop together after a checkpoint.
        proc = subprocess.Popen(command(cfg, folder), stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True, preexec_fn=_die_with_parent)
        old = {s: signal.signal(s, lambda n, _f: proc.send_signal(n))
               for s in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
        try:
            code = _follow(task, proc, job)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            _end_group(proc)
        err.seek(0)
        errors = err.read().splitlines() + job.other
    if code != 0 or not result.is_file():
        raise UserError(failure(errors, job, code))
    summary = json.loads(result.read_text())
    result.unlink()
    Path(folder, FLUSHED).unlink(missing_ok=True)
    return summary


def _follow(task, proc, job):
    """Relay the ranks' lines until mpiexec ends; returns its exit status. The launcher ends
    the job itself when the ranks are not all ready within the bound, or when mpiexec outlives
    a stall's abort (it may wait forever on a host it can no longer reach)."""
    lines = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, proc.stdout), lines.put(None)], daemon=True).start()
    start_by, end_by = time.monotonic() + job.floor, None
    while True:
        try:
            line = lines.get(timeout=0.25)
        except queue.Empty:
            line = ""
        if line is None:
            return proc.wait()
        if line:
            _relay(task, line.rstrip("\n"), job)
        if job.stalls and end_by is None:
            end_by = time.monotonic() + GRACE_S + EXIT_S + 5
        if (end_by and time.monotonic() > end_by) or \
                (not job.all_ready() and time.monotonic() > start_by):
            job.unstarted = not job.all_ready()
            _end_group(proc)
            return proc.wait()


def _end_group(proc):
    """SIGKILL mpiexec's process group and its descendants: mpiexec, and any launcher (ssh) or
    proxy it left behind; Hydra starts its launchers in process groups of their own."""
    family = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _descendants(root):
    """Pids of every process below `root` (Linux /proc; empty elsewhere)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])   # after "pid (name) state"
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _die_with_parent():
    """In mpiexec, before it starts: SIGKILL it if the Luigi worker dies (its ranks go with it,
    as a one-process training would), so no rank trains on without the folder's lock."""
    import ctypes
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


def _relay(task, line, job):
    """Every rank's `pid`, `ready` and `stalled` lines (pipeline/ranks_job.py); rank 0's `log
    MESSAGE`, `progress FRACTION MESSAGE`, `flush N FOLDER`; the rest (mpiexec's own reports)
    kept for `failure`."""
    kind, _, rest = line.partition(" ")
    if job.take(line):
        pass
    elif kind == "progress" and re.match(r"[0-9.]+ ", rest):
        fraction, _, message = rest.partition(" ")
        task.report_progress(float(fraction), message)
    elif kind == "log":
        log.info(rest)
    elif kind == "flush":   # rank 0 wrote a checkpoint: a remote store gets it now (stages/persist.py)
        seq, _, folder = rest.partition(" ")
        persist.flush(folder)
        atomic_write_text(Path(folder, FLUSHED), seq)
    elif line.strip():
        job.other.append(line)


def failure(lines, job, code):
    """One line for a failed job: ranks that never started, a rank that stalled, a rank's own
    error, a rank killed, or ranks that never ran."""
    if job.unstarted:
        return job.unstarted_line()
    if job.stalls:
        return job.stalled()
    for line in lines:
        if line.startswith("rank 0: stopped: "):    # Ctrl-C / SIGTERM: a checkpoint was saved
            return line[len("rank 0: stopped: "):]
        m = re.match(r"rank (\d+): error: (.*)", line)
        if m:
            return f"training rank {m.group(1)} failed: {m.group(2)}"
    text = "\n".join(lines)
    pid = re.search(r"PID (\d+) RUNNING", text)
    how = re.search(r"EXIT STRING: (.*)", text) or re.search(r"EXIT CODE: (\d+)", text)
    if pid:
        rank = job.pids.get(pid.group(1), "?")
        return (f"training rank {rank} (pid {pid.group(1)}) ended abnormally ({how.group(1) if how else 'no reason given'}); "
                "the other ranks were stopped; rerun the same command to resume from the newest checkpoint")
    reason = next((ln.strip() for ln in lines if ln.strip() and not ln.startswith("[mpiexec@")),
                  f"mpiexec exited with {code}")
    return (f"the training ranks could not run ({reason}); check train.hosts, and that every host "
            "has MPI, this project and the artifacts folder at the same paths")


def _line(text):
    """One write per line: the ranks share mpiexec's output, and print() writes the newline
    separately, so two ranks' lines could interleave."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _flush_by_worker(say):
    """Rank 0's flush: ask the worker, then wait until it has flushed. Rank 0 goes on writing
    the folder (and deleting old checkpoints) afterwards, so the worker must never read it
    mid-change: an upload would fail on a deleted file, or mix two versions of a replaced one."""
    seq = itertools.count(1)

    def flush(folder):
        n = str(next(seq))
        say("flush", f"{n} {folder}")
        done = Path(folder, FLUSHED)
        while not (done.is_file() and done.read_text() == n):
            time.sleep(0.005)   # the other ranks wait in the next step's Allreduce meanwhile
    return flush


def _stall_watch(comm, floor):
    """This rank's stall watch: on a stall it says so, gives the other waiting ranks time to
    say so too (the stalled rank is the one that does not), then aborts the whole job."""
    from model.stall import StallWatch

    def stalled(label, waited, bound):
        _line(f"stalled {comm.Get_rank()} {waited:.1f} {bound:.1f} {label}")
        time.sleep(min(GRACE_S, floor / 2))
        threading.Timer(EXIT_S, os._exit, (1,)).start()   # an abort that cannot reach its peers
        comm.Abort(1)
    return StallWatch(floor, stalled)


def main(Train, config, folder):
    """One rank: train its block of lanes; rank 0 reports and writes RESULT."""
    # Before MPI starts: MPI_Init waits for every host, so this names the hosts that answered.
    _line(f"pid {os.environ.get('PMI_RANK', '?')} {os.getpid()}")
    from mpi4py import MPI

    from model.ranks import Ranks
    from stages.atomic import atomic_write_json

    from stages.train import Interrupted

    from . import errors
    comm = MPI.COMM_WORLD
    ranks = Ranks(comm)
    say = (lambda kind, text: _line(f"{kind} {text}")) if ranks.root else (lambda k, t: None)
    _line(f"ready {ranks.rank}")
    try:
        task = Train(config=config)
        ranks.watch = _stall_watch(comm, task.cfg.train.stall_timeout_s)
        # A checkpoint's flush is the worker's to do: with an s3:// artifacts_dir it uploads.
        with persist.flushing(folder, _flush_by_worker(say)):
            summary = task.train(Path(folder), ranks=ranks, log=lambda m: say("log", m),
                                 report=lambda f, m: say("progress", f"{f} {m}"))
        if ranks.root:
            atomic_write_json(Path(folder, RESULT), summary)
    except Interrupted as e:     # every rank stopped after the same step and checkpoint
        if ranks.root:
            sys.stderr.write(f"rank 0: stopped: {e}\n")
        sys.exit(3)
    except BaseException as e:   # noqa: BLE001  one line, then end every rank of the job
        text = str(e) if isinstance(e, errors.FIXABLE) else f"{type(e).__name__}: {e}"
        sys.stderr.write(f"rank {ranks.rank}: error: {' '.join(text.split())}\n")
        sys.stderr.flush()
        comm.Abort(1)
