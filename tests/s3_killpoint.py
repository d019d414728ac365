"""Run the Luigi pipeline and SIGKILL the S3 *server* just before a given object is written.

    S3_KILL_PID=<server pid> python -m tests.s3_killpoint PATTERN NTH -- <luigi arguments>

Patches the store's two write paths (pipeline/store_s3.py: `_upload`, `_put_text`); on the NTH
write whose key matches the glob PATTERN, the server dies first, so that write meets a dead
server: the moment "the store went away mid-upload / mid-checkpoint / mid-marker".
"""
import fnmatch
import os
import signal
import sys
import time


def install(pattern, nth):
    from pipeline import store_s3
    seen = [0]

    def killing(real):
        def write(self, *args):
            key = args[1] if real.__name__ == "_upload" else args[0]
            if fnmatch.fnmatch(key, pattern):
                seen[0] += 1
                if seen[0] == nth:
                    pid = int(os.environ["S3_KILL_PID"])
                    os.killpg(pid, signal.SIGKILL)
                    time.sleep(0.5)   # let the port close
                    print(f"s3_killpoint: killed the server before writing {key}", flush=True)
            return real(self, *args)
        return write
    store_s3.S3Store._upload = killing(store_s3.S3Store._upload)
    store_s3.S3Store._put_text = killing(store_s3.S3Store._put_text)


def main(argv):
    pattern, nth, sep, *luigi_args = argv
    assert sep == "--", "usage: python -m tests.s3_killpoint PATTERN NTH -- <luigi args>"
    install(pattern, int(nth))
    from luigi.cmdline import luigi_run
    sys.argv = ["luigi", *luigi_args]
    luigi_run(luigi_args)


if __name__ == "__main__":
    main(sys.argv[1:])
