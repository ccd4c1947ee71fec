"""The one UserError: a mistake in what the user asked for (a file, a field, a value).

The CLI prints it as one line and exits 2; an asset turns it into a one-line `dg.Failure`
(defs/failures.py). Core errors that are always a user's mistake (a bad task file, an unusable
input, an unknown engine) subclass it, so neither side has to list them. This module imports
nothing: every layer, core included, may import it.
"""


class UserError(Exception):
    """A mistake in what the user asked for (file, field, value): one line, exit 2."""
