"""The feed tests' shared fixtures."""

from tests.feeds.local_server import local_server

__all__ = ["local_server"]
