"""The loss names that the naming rule (CONTRIBUTING, "Names") changed in 0.2.0.

``import jaxloss; jaxloss.huber`` still works until 0.3.0: the package's ``__getattr__`` returns the
new function with a ``DeprecationWarning``, and the command line maps an old name in a spec to the
new one with a warning. Neither old name is in ``jaxloss.__all__`` or ``jaxloss.LOSSES``.
"""

from __future__ import annotations

#: old name -> new name
RENAMED: dict[str, str] = {
    "adaptive_wing": "adaptive_wing_loss",
    "barron": "barron_loss",
    "cauchy": "cauchy_loss",
    "charbonnier": "charbonnier_loss",
    "contrastive": "contrastive_loss",
    "cosine_embedding": "cosine_embedding_loss",
    "geman_mcclure": "geman_mcclure_loss",
    "hinge": "hinge_loss",
    "huber": "huber_loss",
    "info_nce": "info_nce_loss",
    "margin_ranking": "margin_ranking_loss",
    "multiclass_hinge": "multiclass_hinge_loss",
    "siglip": "siglip_loss",
    "smooth_l1": "smooth_l1_loss",
    "squared_hinge": "squared_hinge_loss",
    "supervised_contrastive": "supervised_contrastive_loss",
    "triplet_margin": "triplet_margin_loss",
    "tukey_biweight": "tukey_biweight_loss",
    "welsch": "welsch_loss",
    "wing": "wing_loss",
}


def message(old: str) -> str:
    """The warning for an old name."""
    return (
        f"jaxloss.{old} is renamed jaxloss.{RENAMED[old]} (the naming rule of 0.2.0: a loss whose "
        f"name is not a quantity ends in _loss); the old name goes away in 0.3.0."
    )
