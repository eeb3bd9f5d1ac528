"""What other apps do when accounts creates a project or a user verifies an
email address: a registry filled at start-up, without signals.

accounts imports no other project app (dependency direction: billing →
compute → accounts). An app that must act on these moments registers a
callable from its ``AppConfig.ready()``; billing opens the project's wallet
(``project_created``) and grants the sign-up trial credit (``email_verified``).

Hooks run inside the caller's transaction, in registration order, with
keyword arguments only; an exception propagates (the caller's work is rolled
back with it), so a hook does only what must succeed with the caller.
"""

from __future__ import annotations

from collections.abc import Callable

Hook = Callable[..., object]

_hooks: dict[str, list[Hook]] = {"project_created": [], "email_verified": []}


def register(moment: str, hook: Hook) -> Hook:
    """Run ``hook`` at ``moment`` (``project_created``: ``project=``;
    ``email_verified``: ``user=``, ``email=``, ``request=``). Registering it
    again changes nothing."""
    if hook not in _hooks[moment]:
        _hooks[moment].append(hook)
    return hook


def registered(moment: str) -> tuple[Hook, ...]:
    return tuple(_hooks[moment])


def run(moment: str, **kwargs) -> None:
    for hook in _hooks[moment]:
        hook(**kwargs)
