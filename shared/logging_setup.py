"""Logging for the app and the CLI, with secrets kept out of every record.

The redaction filter masks bearer tokens, refresh tokens, client secrets,
authorization codes and `clientState` values wherever they appear in a
message or its arguments, so a careless `log.info("%s", response.text)`
cannot leak them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

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


# Per-logger rules, too broad to apply everywhere (Graph errors carry an innocent "code"):
# Azure SDK network tracing (logging_enable=True) prints Key Vault bodies {"value": "<the secret>"};
# MSAL's token-cache events at DEBUG print the authorization code {"code": "<the code>"}.
_LOGGER_PATTERNS = (
    ("azure.core.pipeline.policies", re.compile(r'("value"\s*:\s*")(?:[^"\\]|\\.)*')),
    ("msal", re.compile(r'("code"\s*:\s*")(?:[^"\\]|\\.)*')),
)


def redact(text: str, logger: str = "") -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    for prefix, pattern in _LOGGER_PATTERNS:
        if logger.startswith(prefix):
            text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            return True
        cleaned = redact(message, record.name)
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

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:  # the LogRecord constructor's arguments, passed on
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
