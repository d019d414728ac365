"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A problem the user can fix (bad config, missing file, offline URL...).

    The message is one line that names the problem and the fix; the command-line
    entry points print it without a traceback and exit non-zero.
    """
