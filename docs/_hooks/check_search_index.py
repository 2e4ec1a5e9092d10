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
    text = "\n".join(f"{d.get('location', '')} {d.get('title', '')} {d.get('text', '')}"
                     for d in index["docs"])
    missing = [n for n in api.all_public_names() if n.rsplit(".", 1)[1] not in text]
    if missing:
        print(f"search index lacks {len(missing)} public names: {missing}", file=sys.stderr)
        return 1
    print(f"search index: all {len(api.all_public_names())} public names present")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "site"))
