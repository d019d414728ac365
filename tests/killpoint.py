"""Run the Luigi pipeline and SIGKILL it at an exact moment of a file write.

    python -m tests.killpoint WHEN PATTERN NTH -- <luigi arguments>

Every file of the pipeline reaches its final name through `os.replace` (temp file, fsync,
rename). This wrapper patches `os.replace` and, on the NTH rename whose destination matches
the glob PATTERN (matched against the whole path), kills its own process with SIGKILL:

* `before` - the temp file is fully written but not renamed;
* `torn`   - as `before`, after cutting the temp file to half its size (a write cut short);
* `after`  - the file is in place, nothing after it has run.

A real SIGKILL, no cleanup handler runs: this is what a power cut or the OOM killer does,
placed deterministically so each moment is tested on every run, on any machine speed.
With KILLPOINT_DELAY=<seconds> in the environment the process first hangs that long at the
moment (still holding whatever locks it holds), then dies.
"""
import fnmatch
import os
import signal
import sys
import time

WHEN = ("before", "torn", "after")


def install(when, pattern, nth):
    if when not in WHEN:
        raise SystemExit(f"WHEN must be one of {WHEN}, not {when!r}")
    real_replace, seen = os.replace, [0]

    def die():
        time.sleep(float(os.environ.get("KILLPOINT_DELAY", 0)))
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def replace(src, dst, *args, **kwargs):
        if not fnmatch.fnmatch(os.fspath(dst), pattern):
            return real_replace(src, dst, *args, **kwargs)
        seen[0] += 1
        if seen[0] == nth and when == "torn":
            os.truncate(src, os.path.getsize(src) // 2)
        if seen[0] == nth and when in ("before", "torn"):
            die()
        real_replace(src, dst, *args, **kwargs)
        if seen[0] == nth:
            die()

    os.replace = replace


def main(argv):
    when, pattern, nth, sep, *luigi_args = argv
    assert sep == "--", "usage: python -m tests.killpoint WHEN PATTERN NTH -- <luigi args>"
    install(when, pattern, int(nth))
    from luigi.cmdline import luigi_run
    sys.argv = ["luigi", *luigi_args]
    luigi_run(luigi_args)


if __name__ == "__main__":
    main(sys.argv[1:])
