"""The one place that turns a runbook's words (``cloud: azure``, ``provider: traffic_manager``) into a compute
or DNS provider. Actions and the drill cleanup ask here; none of them names a provider module.

Adding a cloud touches this package only: a provider module implementing ``Compute`` (``compute.py``) or
``Dns`` (``dns.py``), and a branch below. The Azure management SDKs are imported only when a step asks for
Azure, because importing them costs every command that loads a runbook about 0.15 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from orchestrator.errors import Permanent
from orchestrator.providers import aws_ec2
from orchestrator.providers.compute import Compute
from orchestrator.providers.dns import Dns
from orchestrator.providers.route53 import Route53Dns, route53_client

Cloud = Literal["aws", "azure"]
DnsProvider = Literal["route53", "azure_dns", "traffic_manager"]


def ec2_service(env: Mapping[str, str], region: str | None) -> aws_ec2.Ec2Compute:
    """EC2 in ``region`` with its AWS-only abilities too (images, tag sweeps), for the steps that need them."""
    return aws_ec2.compute_for(env, region)


def compute_service(
    env: Mapping[str, str], cloud: Cloud, region: str | None, resource_group: str | None = None
) -> Compute:
    """EC2 in ``region`` (default: the environment's), or the Azure VMs of ``resource_group`` in location
    ``region``. Raises ``Permanent`` when Azure is asked for without both."""
    if cloud == "aws":
        return ec2_service(env, region)
    if resource_group is None or region is None:
        raise Permanent(
            "an Azure compute step needs resource_group and region, or --stack-outputs with "
            "azure_resource_group and recovery_region"
        )
    from orchestrator.providers.azure_compute import azure_compute_for

    return azure_compute_for(env, resource_group, region)


def route53_service(env: Mapping[str, str]) -> Dns:
    """Route53, reached with the environment's AWS settings (``AWS_ENDPOINT_URL`` for the lab); tests replace
    this function to hand in an in-memory ``Dns``."""
    return Route53Dns(route53_client(env))


def dns_service(env: Mapping[str, str], provider: DnsProvider, resource_group: str | None = None) -> Dns:
    """The DNS service ``provider`` names. Azure DNS and Traffic Manager live in ``resource_group``; raises
    ``Permanent`` without one."""
    if provider == "route53":
        return route53_service(env)
    if resource_group is None:
        raise Permanent(f"{provider} needs resource_group, or --stack-outputs with azure_resource_group")
    if provider == "azure_dns":
        from orchestrator.providers.azure_dns import azure_dns_for

        return azure_dns_for(env, resource_group)
    from orchestrator.providers.azure_traffic_manager import traffic_manager_for

    return traffic_manager_for(env, resource_group)
