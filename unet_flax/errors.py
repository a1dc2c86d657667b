"""The one exception type for a user's mistake (config, data, paths, workdir).

Entry points print a `UserError` as one line, `error: ...`, and exit with code 2;
any other exception is a bug and keeps its traceback. The message names the file,
field or path at fault and says what to do.
"""


class UserError(Exception):
  """A mistake the user can fix from the message alone."""


class ConfigError(UserError):
  """A config field has a bad type, value or combination."""


class DatasetLayoutError(UserError):
  """A dataset's source (the manual dir, a data dir) does not hold what its config expects."""
