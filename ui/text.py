"""Names that users chose, written safely into Markdown and HTML.

A file, column, category, workspace or run name comes from whoever uploaded or typed it, and is
shown to others (owners and administrators see every member's work). Streamlit renders the text
of ``st.markdown``, ``st.write``, captions, alerts, titles, widget labels and help as Markdown
(GitHub's: bare ``http://…``, ``www.…`` and e-mail addresses become links too), with its own
``:material/…:`` icons, ``:red[…]`` colours and ``$…$`` formulas. A name written there as it is
could be a link (``[Session expired - sign in again](http://…)``) or change the page around it.

:func:`md` escapes, with a backslash (which CommonMark defines to stand for the mark itself),
every mark that can begin Markdown, HTML, an address, a formula or a Streamlit directive (the
dot only after ``www``, a list's mark only at the start; commas, dots, dashes and parentheses
stay): nothing of the name can open a link, an autolink, emphasis, HTML, a formula or a
directive, and it reads exactly as typed. :func:`html` is for the few places that
write HTML. Everything a page writes as Markdown or HTML around a user's name goes through one of
them; plain-text places (a dataframe's cells, a select box's options, a download's file name)
need neither.

>>> md("[Open me](http:127.0.0.1:9).csv")
'\\\\[Open me\\\\](http\\\\:127.0.0.1\\\\:9).csv'
"""

from __future__ import annotations

import html as _html
import re

__all__ = ["html", "md", "names"]

_MARKUP = re.compile("([" + re.escape("\\`*_{}[]<>#|~$:@&!") + "])")
# A dot makes a link only after "www" (GitHub's bare www.example.com); a list starts a line.
_WWW = re.compile(r"(?i)(www)\.")
_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-+.)])")


def md(value: object) -> str:
    """``value`` as text for Markdown: every mark that could begin markup backslash-escaped, line
    breaks made spaces (a name never starts a heading, a list or a table on its own line)."""
    text = " ".join(str(value).replace("\r", " ").split("\n"))
    text = _MARKUP.sub(r"\\\1", text)
    return _LINE_START.sub(r"\1\\\2", _WWW.sub(r"\1\\.", text))


def html(value: object) -> str:
    """``value`` as text for HTML (quotes included, for attributes)."""
    return _html.escape(str(value), quote=True)


def names(values: object, sep: str = ", ") -> str:
    """Several names for Markdown, each escaped, joined by ``sep`` (written as is)."""
    return sep.join(md(v) for v in values)  # type: ignore[union-attr]
