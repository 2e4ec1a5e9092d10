"""The application built on jaxloss: loss plots, the diagnostics table, the demo, the command line.

``python -m jaxloss demo | plot | inspect`` runs it from a shell; :func:`plot_loss` draws any loss
callable from Python (a registered loss against the axis declared with it; a combinator-built
loss or a function of your own against the residual, or as ``kind=`` says) and returns the
matplotlib figure; :func:`curves` gives the same curves as numbers. It uses jaxloss's public API
only, and imports matplotlib and scikit-learn (the ``plot`` and ``demo`` extras) only when it
draws a figure or runs the demo: ``import jaxloss`` needs neither, and does not import this
package.
"""

from ._cli import main
from ._extras import MissingExtraError
from ._plot import Curve, curves, plot_loss
from ._spec import SpecError

__all__ = ["Curve", "MissingExtraError", "SpecError", "curves", "main", "plot_loss"]
