"""Runs the pack's policies over recorded resources, handing each the arguments CrossGuard would.

A resource policy gets each resource's inputs and options, as in ``Analyze``; a stack policy gets every resource's
outputs with parents and dependencies resolved to resources, as in ``AnalyzeStack``. What CrossGuard adds around a
violation (the policy's description, the enforcement level) is left out: a check's result is the messages alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from stacks.policy.model import RecordedResource


def urn_of(resource: RecordedResource) -> str:
    """The recorded URN, or one made up for a resource a test built by hand."""
    return resource.urn or f"urn:pulumi:test::drctl::{resource.type}::{resource.name}"


def options_of(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent,
    )


def resource_args(resource: RecordedResource, config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource.type, resource.inputs, urn_of(resource), resource.name, options_of(resource), None, config
    )


def stack_args(resources: Sequence[RecordedResource], config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    """Every resource as ``AnalyzeStack`` shows it: its outputs (the mock's echo its inputs, as the AWS provider's
    state does) with its ``id`` among them, as in the AWS provider's state."""
    views = [
        PolicyResource(
            r.type,
            {**r.outputs, **({"id": r.id} if r.id else {})},
            urn_of(r),
            r.name,
            options_of(r),
            None,
            None,
            [],
            {},
        )
        for r in resources
    ]
    by_urn = {view.urn: view for view in views}
    for record, view in zip(resources, views, strict=True):
        view.parent = by_urn.get(record.parent or "")
        view.dependencies = [by_urn[u] for u in record.dependencies if u in by_urn]
        view.property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn] for key, urns in record.property_dependencies.items()
        }
    return StackValidationArgs(views, config)


def run_policy(
    policy: Policy, resources: Sequence[RecordedResource], config: Mapping[str, Any] | None = None
) -> list[str]:
    """Every violation ``policy`` reports for ``resources``, in order."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    if isinstance(policy, ResourceValidationPolicy):
        for resource in resources:
            _sync(policy.validate(resource_args(resource, config), report))
    elif isinstance(policy, StackValidationPolicy):
        _sync(policy.validate(stack_args(resources, config), report))
    else:
        raise TypeError(f"policy {policy.name} is neither a resource nor a stack validation")
    return messages


def _sync(result: object) -> None:
    # The pack's validations are plain functions; an async one would need an event loop here.
    if result is not None:
        raise TypeError("an asynchronous policy validation cannot run in the mocks suite")
