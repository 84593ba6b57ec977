"""How Prefect reports a failed run: bad input is one line, never a traceback (unless --debug).

Prefect logs every exception a task or flow raises with its full traceback, on the console and
in the run's logs, and then repeats it in each "Finished in state Failed(...)" line. For a
`SynthpipeError` (a missing column, a one-row table) the traceback says nothing the message
does not, and a user reading it thinks synthpipe crashed. Two logging filters fix that without
touching Prefect's engine:

- on the `prefect.task_runs` / `prefect.flow_runs` loggers, a user error's record loses its
  traceback, so the run's logs (the UI, a served deployment) hold one line per failure;
- on the console, in the CLI, the records that repeat a user error are dropped, because the
  CLI prints the message itself, once; other exceptions keep their one line but lose the
  traceback, which `--debug` brings back.
"""

from __future__ import annotations

import logging

from synthpipe.generators.errors import SynthpipeError

RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class _UserErrorLines(logging.Filter):
    """Strips the traceback from records about a SynthpipeError; remembers their messages."""

    def __init__(self) -> None:
        super().__init__("synthpipe-user-errors")
        self.debug = False
        self.messages: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = _exception(record)
        if isinstance(error, SynthpipeError) and not self.debug:
            if str(error):
                self.messages.add(str(error))
            record.exc_info, record.exc_text = None, None
        return True

    def repeats_user_error(self, record: logging.LogRecord) -> bool:
        if isinstance(_exception(record), SynthpipeError):
            return True
        text = record.getMessage()
        return any(message in text for message in self.messages)


class _QuietConsole(logging.Filter):
    """The console side: drop what the CLI will print once; no tracebacks without --debug."""

    def __init__(self, lines: _UserErrorLines) -> None:
        super().__init__("synthpipe-quiet-console")
        self.lines = lines

    def filter(self, record: logging.LogRecord) -> bool:
        if self.lines.debug:
            return True
        return not self.lines.repeats_user_error(record)


class _NoTraceback(logging.Formatter):
    """Formats a copy of the record without its traceback: the record itself is shared with the
    other handlers (the run's logs keep an unexpected error's traceback)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if _LINES.debug or not record.exc_info:
            return self.inner.format(record)
        copy = logging.makeLogRecord(record.__dict__)
        copy.exc_info, copy.exc_text = None, None
        return self.inner.format(copy)


_LINES = _UserErrorLines()


def one_line_user_errors(debug: bool = False) -> None:
    """Install the run-log filter (idempotent); `debug=True` keeps every traceback."""
    _LINES.debug = debug
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _LINES not in logger.filters:
            logger.addFilter(_LINES)


def quiet_console(debug: bool = False) -> None:
    """For the CLI: also filter Prefect's console handlers (call after Prefect set up logging)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    one_line_user_errors(debug)
    console = _QuietConsole(_LINES)
    for logger in (logging.getLogger(), *(logging.getLogger(name) for name in RUN_LOGGERS)):
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _QuietConsole) for f in handler.filters
            ):
                handler.addFilter(console)
                handler.setFormatter(_NoTraceback(handler.formatter))


def _exception(record: logging.LogRecord) -> BaseException | None:
    info = record.exc_info
    if isinstance(info, tuple) and len(info) == 3:
        return info[1]
    return info if isinstance(info, BaseException) else None
