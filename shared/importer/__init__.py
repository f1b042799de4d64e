"""Bringing an existing replica over from another product (`python -m shared import-webhookdb`)."""
