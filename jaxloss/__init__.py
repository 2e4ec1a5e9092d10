"""jaxloss: loss functions for JAX, for people who design their own losses.

Every loss has the signature ``loss(predictions, targets, *, hyperparameters)`` (classification:
``(logits, labels, ...)``) and returns per-example (or per-element) values; reduce them with
:func:`mean` / :func:`sum` / :func:`mean_parts`, which follow one rule:
``sum(w·v over counted) / sum(w over counted)``, 0 when nothing is counted.
"""

import warnings
from typing import TYPE_CHECKING, Any

from ._core import renamed as _renamed

# isort: off
# Each family module's __all__ is what it exports: a new loss is added there (and to its
# cases file), a new family module here.
from . import fused, multitask
from . import (
    _regression,
    _robust,
    _wing,
    _barron,
    _adaptive,
    _relative,
    _asymmetric,
    _likelihood,
    _scoring,
    _classification,
    _focal,
    _imbalance,
    _divergence,
    _overlap,
    _entmax,
    _fenchel_young,
    _lovasz,
    _ctc,
    _margin,
    _contrastive,
    _ranking,
    _ranking_pairwise,
    _lm,
    _preference,
    _policy_gradient,
    _combinators,
    _weighting,
    _transforms,
    _reduce,
)  # isort: skip

# Regression
from ._regression import *  # noqa: F403
from ._robust import *  # noqa: F403
from ._wing import *  # noqa: F403
from ._barron import *  # noqa: F403
from ._adaptive import *  # noqa: F403
from ._relative import *  # noqa: F403
from ._asymmetric import *  # noqa: F403
from ._likelihood import *  # noqa: F403
from ._scoring import *  # noqa: F403

# Classification
from ._classification import *  # noqa: F403
from ._focal import *  # noqa: F403
from ._imbalance import *  # noqa: F403
from ._divergence import *  # noqa: F403
from ._overlap import *  # noqa: F403
from ._entmax import *  # noqa: F403
from ._fenchel_young import *  # noqa: F403
from ._lovasz import *  # noqa: F403
from ._ctc import *  # noqa: F403

# Margin, metric learning and ranking
from ._margin import *  # noqa: F403
from ._contrastive import *  # noqa: F403
from ._ranking import *  # noqa: F403
from ._ranking_pairwise import *  # noqa: F403

# Language-model heads and post-training
from ._lm import *  # noqa: F403
from ._preference import *  # noqa: F403
from ._policy_gradient import *  # noqa: F403

# Combinators and reductions
from ._combinators import *  # noqa: F403
from ._weighting import *  # noqa: F403
from ._transforms import *  # noqa: F403
from ._reduce import *  # noqa: F403

# Fused losses, the multi-task objective, the registry
from ._core.registry import LossInfo, loss_info, registered
from .fused import (
    linear_cross_entropy,
    linear_distillation,
    linear_distillation_topk,
    linear_dpo_loss,
    linear_kto_loss,
    linear_log_probs,
    linear_orpo_loss,
    linear_policy_gradient_loss,
    linear_simpo_loss,
)
from .multitask import multitask_loss
# isort: on

__version__ = "0.1.0"

#: Every public loss function, by name: each one is declared once, by ``@register`` where it is
#: defined (``jaxloss/_core/registry.py``). The conformance suite fails if one has no test case.
LOSSES = registered()

#: The loss names of 0.1 that the naming rule (a loss whose name is not a quantity ends in
#: ``_loss``) changed in 0.2.0, old -> new. ``jaxloss.<old>`` still returns the new function with
#: a ``DeprecationWarning``, and the command line accepts the old name, until 0.3.0.
RENAMED = dict(_renamed.RENAMED)

#: Higher-order functions that build losses from losses (and the class-weight helper).
COMBINATORS = (
    "asymmetric",
    "asymmetric_binary",
    "bounded",
    "class_weighted",
    "class_weights_from_counts",
    "detached",
    "linear_combination",
    "log_space",
    "masked",
    "multitask_loss",
    "relative",
    "rescaled",
    "scaled",
    "stop_gradient",
    "sum_losses",
    "weighted",
)

__all__ = [  # the package's own names; each family's follow (static tools read both)
    "COMBINATORS",
    "LOSSES",
    "RENAMED",
    "LossInfo",
    "fused",
    "linear_cross_entropy",
    "linear_distillation",
    "linear_distillation_topk",
    "linear_dpo_loss",
    "linear_kto_loss",
    "linear_log_probs",
    "linear_orpo_loss",
    "linear_policy_gradient_loss",
    "linear_simpo_loss",
    "loss_info",
    "multitask",
    "multitask_loss",
]
__all__ += _regression.__all__
__all__ += _robust.__all__
__all__ += _wing.__all__
__all__ += _barron.__all__
__all__ += _adaptive.__all__
__all__ += _relative.__all__
__all__ += _asymmetric.__all__
__all__ += _likelihood.__all__
__all__ += _scoring.__all__
__all__ += _classification.__all__
__all__ += _focal.__all__
__all__ += _imbalance.__all__
__all__ += _divergence.__all__
__all__ += _overlap.__all__
__all__ += _entmax.__all__
__all__ += _fenchel_young.__all__
__all__ += _lovasz.__all__
__all__ += _ctc.__all__
__all__ += _margin.__all__
__all__ += _contrastive.__all__
__all__ += _ranking.__all__
__all__ += _ranking_pairwise.__all__
__all__ += _lm.__all__
__all__ += _preference.__all__
__all__ += _policy_gradient.__all__
__all__ += _combinators.__all__
__all__ += _weighting.__all__
__all__ += _transforms.__all__
__all__ += _reduce.__all__

if not TYPE_CHECKING:  # a type checker should flag the old names, not accept them as Any

    def __getattr__(name: str) -> Any:
        """The 0.1 names the naming rule changed: the new function, with a DeprecationWarning."""
        new = _renamed.RENAMED.get(name)
        if new is None:
            raise AttributeError(f"module 'jaxloss' has no attribute {name!r}")
        warnings.warn(_renamed.message(name), DeprecationWarning, stacklevel=2)
        return globals()[new]
