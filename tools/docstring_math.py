"""Sphinx extension: render the ``$...$`` math of amortlib's docstrings on the API page.

amortlib's docstrings write inline math as ``$...$``, like the chapters do, so that they read well
in ``help()`` and in the notebooks. Autodoc parses docstrings as reStructuredText, where a dollar
sign is plain text, so this extension rewrites each ``$...$`` into the ``:math:`...``` role before
autodoc renders it. Display math written as ``.. math::`` blocks passes through unchanged.
"""

from __future__ import annotations

import re

# $...$ on one paragraph: not $$, not an escaped \$, no blank line and no backtick inside.
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)((?:[^$`\n]|\n(?![ \t]*\n))+?)(?<![\\\s])\$(?!\$)")


def dollars_to_math_role(text: str) -> str:
    r"""Rewrite ``$...$`` in ``text`` as ``:math:`...```, keeping everything else.

    Example:
        >>> dollars_to_math_role(r"the posterior $p(x \mid y)$ is Gaussian")
        'the posterior :math:`p(x \\mid y)` is Gaussian'
        >>> dollars_to_math_role("the loss is $-$ELBO")
        'the loss is :math:`-`\\ ELBO'
    """
    def role(match: re.Match) -> str:
        # Inline markup must be separated from adjacent word characters: "$-$ELBO" needs an
        # escaped space (which renders as nothing) between the role and the word.
        before = "\\ " if match.start() > 0 and text[match.start() - 1].isalnum() else ""
        after = "\\ " if match.end() < len(text) and text[match.end()].isalnum() else ""
        return before + ":math:`" + " ".join(match.group(1).split()) + "`" + after

    return INLINE_MATH.sub(role, text)


def _process_docstring(app, what, name, obj, options, lines):
    # Leave literal blocks (``>>>`` examples) alone: rewrite only the other lines.
    text = "\n".join(line if not line.lstrip().startswith(">>>") else line.replace("$", "\0")
                     for line in lines)
    new = dollars_to_math_role(text).replace("\0", "$").split("\n")
    lines[:] = new


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
