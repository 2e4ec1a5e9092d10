"""The core every loss family stands on: validation (``checks``), numerics, tangents of the
closed-form JVPs (``ad``) and the registry of public losses. Nothing here defines a loss."""
