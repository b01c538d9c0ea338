"""Which glossary entries no chapter links: python tools/glossary_links.py (exit 1 if any).

An entry of book/glossary.md (one or more term lines, then its indented definition) counts as
linked when some chapter (a notebook of the table of contents) writes {term}`...` with one of
its terms, either as the text or as the target of {term}`text <target>`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from browser_check import toc_notebooks  # noqa: E402


def entries() -> list[list[str]]:
    block = (ROOT / "book" / "glossary.md").read_text().split("```{glossary}", 1)[1]
    groups: list[list[str]] = []
    previous_was_term = False
    for line in block.split("\n```", 1)[0].splitlines():
        if line.strip() and not line[0].isspace():
            if previous_was_term:
                groups[-1].append(line.strip())
            else:
                groups.append([line.strip()])
            previous_was_term = True
        else:
            previous_was_term = False
    return groups


def linked_terms() -> set[str]:
    found = set()
    for doc in toc_notebooks():
        cells = json.loads((ROOT / f"{doc}.ipynb").read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        for role in re.findall(r"\{term\}`([^`]+)`", text):
            target = re.search(r"<([^>]+)>\s*$", role)
            term = target.group(1) if target else role
            found.add(" ".join(term.split()).lower())
    return found


def main() -> int:
    linked = linked_terms()
    missing = [group for group in entries() if not {t.lower() for t in group} & linked]
    for group in missing:
        print("not linked from any chapter:", " / ".join(group))
    print(f"{len(entries()) - len(missing)} of {len(entries())} glossary entries are linked")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
