"""Entry point for ``python -m jaxloss``: runs the training demo in :mod:`jaxloss._demo`."""

from ._demo import main

raise SystemExit(main())
