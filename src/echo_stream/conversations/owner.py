"""Who owns a conversation: the caller's client key (hashed), or a verified token subject.

The key itself is never stored: a SHA-256 prefix names it. The request's `user` field narrows
ownership *within* one key (a front end serving many people with one key), never across keys,
so nobody can reach another key's conversations by naming a user.
"""

from __future__ import annotations

import hashlib

ANONYMOUS = "anonymous"
"""The owner when the API is open (no `ECHO_API_KEYS`) and the caller sent no key."""


def owner_of(client_key: str | None, *, subject: str | None = None, user: str | None = None) -> str:
    """The owner string for a caller; `subject` is a token's verified subject, when there is one."""
    if subject:
        base = "sub:" + hashlib.sha256(subject.encode()).hexdigest()[:40]
    elif client_key:
        base = "key:" + hashlib.sha256(client_key.encode()).hexdigest()[:40]
    else:
        base = ANONYMOUS
    if user:
        return base + ":user:" + hashlib.sha256(user.encode()).hexdigest()[:40]
    return base
