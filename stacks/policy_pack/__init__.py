"""drctl's CrossGuard policy pack (``pulumi preview --policy-pack stacks/policy_pack``).

Pulumi runs this directory as a program, with the directory itself on ``sys.path``, so ``__main__.py`` imports
``policies`` as a top-level package. Tests import the same code as ``stacks.policy_pack.policies``. Nothing
under ``policies`` imports anything outside this directory: `pulumi policy publish` uploads only the directory.
"""
