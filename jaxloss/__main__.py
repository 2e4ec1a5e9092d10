"""Entry point for ``python -m jaxloss``: the ``demo`` and ``plot`` commands (see ``_cli``)."""

from ._cli import main

raise SystemExit(main())
