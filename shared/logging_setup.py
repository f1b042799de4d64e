"""Logging for the app and the CLI, with secrets kept out of every record.

The redaction filter masks bearer tokens, refresh tokens, client secrets,
authorization codes and `clientState` values wherever they appear in a
message or its arguments, so a careless `log.info("%s", response.text)`
cannot leak them.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(
        r"(?i)([\"']?(?:access_token|refresh_token|id_token|client_secret|code_verifier|clientState|"
        r"client_state|password|encrypted_refresh_token|AccountKey|validationToken)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\"'&\s,;}]+"
    ),
    # An authorization code or SAS signature in a URL's query string.
    re.compile(r"([?&](?:code|sig)=)[^&\s\"']+"),
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed = False


def install_redaction() -> None:
    """Attach the filter to the root handlers and every handler added later through the root."""
    global _installed
    if _installed:
        return
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(RedactingFilter())
    # Records created anywhere pass the filter before reaching any handler.
    old_factory = logging.getLogRecordFactory()
    redactor = RedactingFilter()

    def factory(*args, **kwargs):  # type: ignore[no-untyped-def]
        record = old_factory(*args, **kwargs)
        redactor.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    install_redaction()
