"""mkdocs hook: the API reference, generated from the code at build time.

Every public name of ``jaxloss`` and of each public subpackage (``jaxloss.multitask``,
``jaxloss.fused``, any added later) gets an entry on the page of the module that defines it, so
no hand-kept list can forget one. Loss families also get a picture of their losses and
derivatives, drawn by ``jaxloss.app.plot_loss`` (the code behind ``python -m jaxloss plot``) when
the site is built (never committed, so it cannot drift from the code). ``tests/test_docs_site.py``
checks the page plan covers every public name; the strict build in CI checks that every entry
resolves.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

#: Page title of each defining module. A public name from a module missing here fails the
#: build (and tests/test_docs_site.py), so a new module gets a title when it gets its first name.
TITLES: dict[str, str] = {  # in the order of the navigation
    "jaxloss._regression": "Regression",
    "jaxloss._robust": "Robust and small-error",
    "jaxloss._wing": "Robust and small-error",
    "jaxloss._barron": "Barron's general and adaptive loss",
    "jaxloss._adaptive": "Barron's general and adaptive loss",
    "jaxloss._relative": "Relative and log-space errors",
    "jaxloss._asymmetric": "Asymmetric and quantile",
    "jaxloss._likelihood": "Likelihoods",
    "jaxloss._classification": "Classification",
    "jaxloss._focal": "Focal losses",
    "jaxloss._imbalance": "Imbalanced classes and costs",
    "jaxloss._overlap": "Overlap (segmentation)",
    "jaxloss._lovasz": "Lovász (segmentation)",
    "jaxloss._divergence": "Divergences",
    "jaxloss._ctc": "Sequence (CTC)",
    "jaxloss._fenchel_young": "Sparsemax, entmax and Fenchel–Young",
    "jaxloss._entmax": "Sparsemax, entmax and Fenchel–Young",
    "jaxloss._margin": "Margin and ranking",
    "jaxloss._contrastive": "Contrastive",
    "jaxloss._ranking": "Learning to rank",
    "jaxloss._ranking_pairwise": "Learning to rank",
    "jaxloss._scoring": "Proper scoring rules (CRPS, energy score)",
    "jaxloss._preference": "Post-training: preference losses",
    "jaxloss._policy_gradient": "Post-training: policy gradients",
    "jaxloss._lm": "Language-model heads: log-probabilities and distillation",
    "jaxloss._combinators": "Combinators",
    "jaxloss._core.combine": "Combinators",  # the Loss protocol, public as jaxloss.Loss
    "jaxloss._weighting": "Combinators",
    "jaxloss._transforms": "Combinators",
    "jaxloss._reduce": "Reductions",
    "jaxloss.multitask": "Multi-task",
    "jaxloss.fused": "Fused and vocab-parallel cross-entropy",
    "jaxloss.diagnostics": "Diagnostics",
    "jaxloss": "Registries",
    "jaxloss.app": "Plotting and command line",
}


def _slug(title: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in title.lower())
    return "-".join(p for p in keep.split("-") if p)


def public_packages() -> list[ModuleType]:
    """``jaxloss`` and its public subpackages (names without a leading underscore)."""
    import jaxloss

    found = [jaxloss]
    for info in pkgutil.iter_modules(jaxloss.__path__):
        if info.ispkg and not info.name.startswith("_"):
            found.append(importlib.import_module(f"jaxloss.{info.name}"))
    return found


def _title(package: ModuleType, obj: Any) -> str:
    """The page of a public object: the title of its defining module, matched by the longest
    module prefix in TITLES (``jaxloss.multitask._aggregators`` -> "Multi-task"); objects
    without a module (constants) go on their package's page."""
    module = getattr(obj, "__module__", None)
    if not (isinstance(module, str) and module.startswith("jaxloss")):
        module = package.__name__
    candidates = [m for m in TITLES if module == m or module.startswith(m + ".")]
    if not candidates:
        raise KeyError(f"docs/_hooks/api_pages.py: no page title for module {module!r} "
                       f"(public name {package.__name__}); add it to TITLES")
    return TITLES[max(candidates, key=len)]


def plan() -> dict[str, list[str]]:
    """Page title -> the fully qualified public names documented on it, in ``__all__`` order.

    An object exported under several names (``jaxloss.linear_cross_entropy`` is
    ``jaxloss.fused.linear_cross_entropy``) is documented once, under its first name; the other
    names are listed as aliases by ``aliases()``."""
    pages: dict[str, list[str]] = defaultdict(list)
    seen: set[int] = set()
    for package in public_packages():
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, ModuleType) or id(obj) in seen:
                continue  # a subpackage has its own page; an alias its first entry
            seen.add(id(obj))
            pages[_title(package, obj)].append(f"{package.__name__}.{name}")
    order = list(dict.fromkeys(TITLES.values()))
    return {t: pages[t] for t in order if t in pages}


def all_public_names() -> list[str]:
    """Every fully qualified public name (aliases included), for tests and the search check."""
    return [f"{p.__name__}.{n}" for p in public_packages() for n in p.__all__
            if not isinstance(getattr(p, n), ModuleType)]


def aliases() -> dict[str, list[str]]:
    """Documented name -> the other public names of the same object."""
    first: dict[int, str] = {}
    out: dict[str, list[str]] = defaultdict(list)
    for qualified in all_public_names():
        package, name = qualified.rsplit(".", 1)
        obj = getattr(importlib.import_module(package), name)
        if id(obj) in first:
            out[first[id(obj)]].append(qualified)
        else:
            first[id(obj)] = qualified
    return dict(out)


def _intro(title: str) -> str:
    """The conventions paragraph at the top of the family module(s) of a page."""
    modules = [m for m, t in TITLES.items()
               if t == title and m != "jaxloss" and not m.startswith("jaxloss._core")]
    parts = []
    for m in modules:
        doc = importlib.import_module(m).__doc__ or ""
        parts.append(doc.strip())
    return "\n\n".join(p for p in parts if p)


def _losses_on(names: list[str]) -> list[str]:
    import jaxloss

    short = [n.split(".", 1)[1] for n in names if n.count(".") == 1]
    # Losses registered with plot=None cannot be drawn against one scalar: listed, not drawn.
    return [n for n in short if n in jaxloss.LOSSES and jaxloss.loss_info(n).plot is not None]


def page_markdown(title: str, names: list[str], image: str | None) -> str:
    lines = [f"# {title}", ""]
    intro = _intro(title)
    if intro:
        lines += ["```text", intro, "```", ""]
    if image:
        lines += [f"![Losses and derivatives of this family]({image})", "",
                  "Drawn at build time by `jaxloss.app.plot_loss(NAME, ...)`, the code behind "
                  "`python -m jaxloss plot NAME ...`.", ""]
    other = aliases()
    for qualified in names:
        lines += [f"::: {qualified}", "    options:", "      show_root_heading: true",
                  "      show_root_full_path: false", ""]
        if qualified in other:
            also = ", ".join(f"`{a}`" for a in other[qualified])
            lines += [f"Also public as {also}.", ""]
    return "\n".join(lines)


_IMAGES: dict[str, Path] = {}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    from jaxloss.app import plot_loss

    out = Path(tempfile.mkdtemp(prefix="jaxloss-docs-"))
    for title, names in plan().items():
        slug = _slug(title)
        losses = _losses_on(names)
        image = None
        if losses:
            png = out / f"{slug}.png"
            plot_loss(*losses, out=png)
            files.append(File.generated(config, f"api/{slug}.png", abs_src_path=str(png)))
            image = f"{slug}.png"
        content = page_markdown(title, names, image)
        files.append(File.generated(config, f"api/{slug}.md", content=content))
    return files


def on_config(config: Any) -> Any:
    """Lists the generated pages under "API reference" in the navigation."""
    nav = [entry for entry in config["nav"] if "API reference" not in entry]
    nav.append({"API reference": [{t: f"api/{_slug(t)}.md"} for t in plan()]})
    config["nav"] = nav
    return config
