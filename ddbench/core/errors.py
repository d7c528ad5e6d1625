"""The one exception type the CLI turns into a single line on stderr (exit code 2)."""


class DDBenchError(Exception):
    """A user-facing error: bad input, missing data, a set that does not fit its card.

    The message is one line that says what is wrong and, where possible, what to do.
    """
