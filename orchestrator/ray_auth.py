"""Ray's auth token, where Ray documents it, for the engine and the Jobs client alike.

Ray reads `RAY_AUTH_MODE` when it is imported and caches it, so the one place that sets
it (`use_token_to_join`) runs before anything imports `ray`. Importing this module
imports no Ray.
"""

from __future__ import annotations

import os
import sys


def auth_token() -> str | None:
    """Ray's token from where Ray documents it: RAY_AUTH_TOKEN, the file named by
    RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.join(os.path.expanduser("~"),
                                                                 ".ray", "auth_token")
    try:
        with open(os.path.expanduser(path)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def protect_token_file() -> None:
    """Ray writes ~/.ray/auth_token readable by everyone (0644) when it makes one: the
    token lets whoever reads it run code on this machine's Ray. Make it the owner's
    alone (0600) when it is ours."""
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return  # a file the user chose and manages
    path = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    try:
        info = os.stat(path)
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def use_token_to_join() -> None:
    """Before joining a cluster (--address): when the environment carries a token but no
    RAY_AUTH_MODE, say `token`. Ray's client does not switch token auth on by itself on
    joining (measured with Ray 2.60: refused with InvalidAuthToken), and it reads the mode
    once, when `ray` is imported: so this runs before anything imports it."""
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules:
        return
    if auth_token() is not None:
        os.environ["RAY_AUTH_MODE"] = "token"


