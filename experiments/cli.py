"""How every command line tool starts and fails: `cli.run(main)` instead of `app.run(main)`.

A user's mistake (a bad flag or config override, a missing config file, a
`UserError` from the library, a path that cannot be written) is printed as one
line, `error: ...`, with exit code 2. Ctrl-C ends with one line and code 130.
Anything else is a bug and keeps its full traceback. Libraries log warnings and errors only;
`--verbosity=0` shows their INFO lines too.
"""

from __future__ import annotations

import errno
import json
import os
import sys

from absl import app, flags, logging
from ml_collections.config_flags import config_flags

from unet_flax.errors import UserError

# Path errors that come from the user's filesystem (permissions, a file where a folder
# should be, a full or read-only disk), not from a bug.
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EROFS,
                errno.ENOSPC, errno.EDQUOT, errno.ELOOP}
USER_ERROR_EXIT = 2


def _one_line(message: str) -> str:
  message = str(message)
  if message[:1] in '\'"' and message[-1:] == message[:1]:  # a KeyError's repr, as ml_collections raises
    message = message[1:-1].encode().decode('unicode_escape')
  return ' '.join(message.replace("\\'", "'").split())


def fail(message: str, code: int = USER_ERROR_EXIT):
  print(f'error: {_one_line(message)}', file=sys.stderr, flush=True)
  sys.exit(code)


def print_result(result, output: str | None = None) -> None:
  """A benchmark's result as its last printed line, one JSON object (what scripts and tests read),
  and also in the file `output` when one is given."""
  if output:
    with open(output, 'w') as f:
      json.dump(result, f, indent=2)
  print(json.dumps(result))


def path_error_message(e: OSError) -> str | None:
  """One line for an OSError about a user's path, or None when it looks like a bug."""
  if e.errno not in _PATH_ERRNOS or not e.filename:
    return None
  return (f'cannot use {e.filename}: {e.strerror}. Check the path given on the command line '
          f'(or in the config) exists, is the right kind (file or folder) and is writable.')


def _load_config_files() -> None:
  """ml_collections defers a config file's load error (a missing file, say) to the config's first
  use, somewhere in a tool's main, where it would be a traceback; touching every config flag's
  value here raises it while the flags are parsed."""
  for name in flags.FLAGS:
    flag = flags.FLAGS[name]
    if config_flags.is_config_flag(flag) and flag.value is not None:
      getattr(flag.value, 'keys', None)


def _config_files(argv) -> list[str]:
  """The files named by config-file flags on the command line (`--config=PATH[:ARG]`)."""
  files = []
  for i, arg in enumerate(argv[1:], 1):
    name, eq, value = arg.lstrip('-').partition('=')
    if not eq and i + 1 < len(argv):
      value = argv[i + 1]
    if value and name in flags.FLAGS and config_flags.is_config_flag(flags.FLAGS[name]):
      files.append(value.split(':')[0])
  return files


def _parse_flags(argv):
  """absl's flag parsing, with every failure (ml_collections' override and config file errors
  included) as one line that names the flag."""
  try:
    rest = flags.FLAGS(argv)
    _load_config_files()
    return rest
  except flags.Error as e:
    fail(f'{e} (see --helpshort)')
  except (AttributeError, KeyError, OSError, TypeError, ValueError, ImportError) as e:
    # ml_collections raises these while loading --config or applying --config.X=...
    cause = e.__cause__ or e
    missing = [p for p in _config_files(argv) if not os.path.isfile(p)]
    if missing:
      fail(f'no config file {missing[0]} (looked from {os.getcwd()}): give the path of one of the repository\'s '
           f'configs, e.g. --config=configs/quick.py from the repository\'s root')
    bad = [a for a in argv[1:] if a.startswith('--config')]
    if cause.args and isinstance(cause.args[0], KeyError):  # ml_collections: a field the config lacks
      fail(f'bad --config flag ({" ".join(bad)}): the config has no field {_one_line(cause)} '
           f'(the fields are in configs/base.py)')
    fail(f'bad --config flag ({" ".join(bad) or "--config"}): {_one_line(cause)}')


def run(main) -> None:
  def guarded(argv):
    if not flags.FLAGS['verbosity'].present:  # libraries' INFO chatter only on request
      logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except UserError as e:
      fail(str(e), getattr(e, 'exit_code', USER_ERROR_EXIT))
    except KeyboardInterrupt:
      fail('interrupted (Ctrl-C).', code=130)
    except OSError as e:
      message = path_error_message(e)
      if message is None:
        raise
      fail(message)

  app.run(guarded, flags_parser=_parse_flags)
