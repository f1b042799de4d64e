"""Local, faithful stand-in for Microsoft Graph v1.0 and the Microsoft identity platform (dev/test only)."""

from .simulator import GraphSimulator

__all__ = ["GraphSimulator"]
