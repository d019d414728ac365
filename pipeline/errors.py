"""User mistakes reach the terminal as one line, and Luigi exits non-zero on failure.

Luigi logs every exception from a task (or from building one) with its traceback. For the
errors a user can fix, the traceback is noise: this filter rewrites such records to a single
`error: ...` line. Luigi also exits 0 when a task fails unless [retcode] says otherwise; the
repo's luigi.cfg sets it, and the same values are applied here when no luigi.cfg provided
them, so running from another folder behaves the same.
"""
import logging
import re

import luigi.configuration

from model import CheckpointError, DivergenceError
from stages.errors import UserError

FIXABLE = (UserError, DivergenceError, CheckpointError)
RETCODES = {"already_running": "10", "missing_data": "20", "not_run": "25", "task_failed": "30",
            "scheduling_error": "35", "unhandled_exception": "40"}


# Luigi formats some tracebacks into the message text itself (errors in complete()/requires()).
_IN_TEXT = re.compile(r"^(?:[\w.]+\.)?(?:%s): (.+)$" % "|".join(
    ["UserError", "Interrupted", "DivergenceError", "CheckpointError"]), re.M)


class OneLineErrors(logging.Filter):
    """Drop the traceback of fixable errors and say what to do instead."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, FIXABLE):
            record.msg, record.args = "%s", (exc,)
            record.exc_info, record.exc_text = None, None
        elif "Traceback" in str(record.msg):
            found = _IN_TEXT.findall(record.getMessage())
            if found:
                record.msg, record.args = "%s", (found[-1],)
        return True


def install():
    """Attach the filter to Luigi's logger and default the exit codes."""
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, OneLineErrors) for f in logger.filters):
        logger.addFilter(OneLineErrors())
    cfg = luigi.configuration.get_config()
    for section, values in (("retcode", RETCODES), ("worker", {"check_complete_on_run": "true"})):
        if not cfg.has_section(section):
            cfg.add_section(section)
        for key, value in values.items():
            if not cfg.has_option(section, key):
                cfg.set(section, key, value)
    pipeline_log = logging.getLogger("pipeline")
    if not pipeline_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        pipeline_log.addHandler(handler)
        pipeline_log.setLevel(logging.INFO)
        pipeline_log.propagate = False
