"""Keep prompts out of the worker's logs at the default level.

HADIS's own log lines name requests by id only. The diffusers pipelines, though, warn with the
*text* of a prompt that is longer than the text encoder accepts ("The following part of your input
was truncated because CLIP can only handle sequences up to 77 tokens: [...]"), through their own
library handlers (diffusers and transformers do not propagate to the root logger). :func:`install`
puts a filter on those handlers (and the root logger's) that replaces such a record's message with
one that says what happened without the text.
"""

from __future__ import annotations

import logging

#: the words every diffusers/transformers pipeline uses when it warns with a cut prompt's text
TRUNCATION_MARK = "part of your input was truncated"
REDACTED = "a prompt was longer than the text encoder accepts and was truncated (its text is not logged)"
LIBRARY_LOGGERS = ("diffusers", "transformers")


class PromptTextFilter(logging.Filter):
    """Rewrites a record that quotes a truncated prompt; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to the handler's own error path
            return True
        if TRUNCATION_MARK in message:
            record.msg, record.args = REDACTED, ()
        return True


_FILTER = PromptTextFilter()


def install() -> None:
    """Add the filter to every handler of the diffusers/transformers library loggers and of the root
    logger (idempotent; call it after those libraries are imported: they add their handlers then)."""
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS] + [logging.getLogger()]
    for logger in loggers:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)  # records logged on the library root logger itself
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)  # records of its child loggers (the pipelines')
