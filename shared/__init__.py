"""Outlook calendar sync: the Function App's package.

Everything the app does lives here; `function_app.py` only registers the
blueprints defined in `shared.http`. Keep this module free of imports: it is
loaded on every cold start.
"""

__version__ = "0.1.0"
