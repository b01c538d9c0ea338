"""Sphinx extension: include each JavaScript file or inline script once per page.

With Jupyter Book 1.0.4, sphinx-thebe registers its inline configuration script
(``const THEBE_JS_URL = ...``) twice, so every page raised "SyntaxError: Identifier
'THEBE_JS_URL' has already been declared" in the reader's browser (the browser test,
tools/browser_check.py, reports any JavaScript exception). This drops repeated entries from
the page's script list, keeping the first of each.
"""

from __future__ import annotations


def _script_key(script) -> tuple:
    # A script is its file name and its attributes, such as an inline script's body; the two
    # registrations of the same inline script differ in its file name (None or "").
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""  # None or "" for inline
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in sorted(scripts, key=lambda js: getattr(js, "priority", 500)):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
