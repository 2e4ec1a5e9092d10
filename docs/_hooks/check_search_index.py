"""Checks a built site's search index: every public name of jaxloss is findable.

Run after `python -m mkdocs build --strict -d SITE`:
`python docs/_hooks/check_search_index.py SITE`.
Exit status 1 (with the missing names) when a public name is absent from the index.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys


def main(site: str) -> int:
    here = pathlib.Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("api_pages", here / "api_pages.py")
    assert spec and spec.loader
    api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api)
    index = json.loads((pathlib.Path(site) / "search" / "search_index.json").read_text())
    anchors = {d.get("location", "").rsplit("#", 1)[-1] for d in index["docs"]}
    text = "\n".join(d.get("text", "") for d in index["docs"])
    documented = [n for names in api.plan().values() for n in names]
    # A documented name has its own entry (its anchor ``#jaxloss.name``); an alias is named in
    # the text of its target's entry ("Also public as ...").
    missing = [n for n in documented if n not in anchors]
    missing += [a for aliases in api.aliases().values() for a in aliases if a not in text]
    if missing:
        print(f"search index lacks {len(missing)} public names: {missing}", file=sys.stderr)
        return 1
    print(f"search index: all {len(api.all_public_names())} public names present")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "site"))
