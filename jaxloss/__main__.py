"""Entry point for ``python -m jaxloss``: the ``demo``, ``plot`` and ``inspect`` commands of
:mod:`jaxloss.app`."""

from .app import main

raise SystemExit(main())
