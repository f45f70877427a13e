"""Actions a runbook step can perform: ``base`` holds the contract, one module per action declares its
``Params`` and ``SPEC``, and ``registry.REGISTRY`` finds them by name."""
