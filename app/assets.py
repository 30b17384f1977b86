"""Where the pages' files are: templates/ and static/.

In a checkout (and an editable install) they sit beside the packages, at the top of the
repository; an installed wheel carries them inside this package, as app/templates and
app/static (pyproject.toml maps them there), so the app finds them wherever it is installed.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def folder(name: str) -> Path:
    """``templates`` or ``static``: inside the installed package, else the checkout's."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name
