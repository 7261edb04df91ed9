"""Outposts networking as EC2 enforces it and moto 5.2 does not, loaded into the moto server:

- CreateSubnet `OutpostArn` (moto ignores it) makes an Outpost's subnet; DescribeSubnets
  names its `OutpostArn`, and DescribeInstances the `OutpostArn` of an instance launched in it.
- ModifySubnetAttribute `EnableLniAtDeviceIndex` (moto ignores it) marks a subnet's
  interfaces at that device index as local network interfaces (LNIs); index 0 is refused.
- RunInstances refuses an instance-level `SubnetId` when the launch template declares
  network interfaces (moto checks only the request's own).
- ModifyInstanceAttribute `Groups` is refused on an instance with more than one network
  interface.
- RunInstances `ClientToken` is idempotent (moto launches again): the same token with the
  same request answers with the instances it launched; with another request,
  IdempotentParameterMismatch. Its `DisableApiTermination` (moto drops it) protects the
  instance from TerminateInstances.
- DeleteSecurityGroup refuses a group a running instance's network interface uses
  (DependencyViolation); moto deletes it.
- A network interface's groups are its own (moto adds the instance's to every interface):
  ModifyNetworkInterfaceAttribute `Groups` changes that interface only, and the instance's
  groups are those of its interfaces; ModifyInstanceAttribute `Groups` on a one-interface
  instance changes its interface's.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterCombination
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.subnets import Subnets

_original_create_subnet = Subnets.create_subnet
_original_modify_subnet_attribute = Subnets.modify_subnet_attribute
_original_run_instances = InstanceResponse.run_instances
_original_groups_handler = InstanceResponse._security_grp_instance_attribute_handler
_original_modify_interface = ElasticNetworkInterfaces.modify_network_interface_attribute
_original_delete_group = SecurityGroupBackend.delete_security_group


def create_subnet(self: Subnets):
    answer = _original_create_subnet(self)
    outpost = self._get_param("OutpostArn")
    if outpost:
        answer.result["Subnet"].outpost_arn = outpost
    return answer


def modify_subnet_attribute(self: Subnets):
    index = self._get_param("EnableLniAtDeviceIndex")
    if index is not None:
        # EnableLniAtDeviceIndex: "A local network interface cannot be the primary network
        # interface (eth0)."
        if int(index) == 0:
            raise EC2ClientError("InvalidParameterValue", "a local network interface cannot be the primary (eth0)")
        self.ec2_backend.get_subnet(self._get_param("SubnetId")).enable_lni_at_device_index = int(index)
    return _original_modify_subnet_attribute(self)


_tokens_lock = threading.Lock()
_tokens: dict[tuple[str, str, str], tuple[str, Any]] = {}  # (account, region, token) -> (request, reservation)


def run_instances(self: InstanceResponse):
    token = self._get_param("ClientToken")
    if not token or self._get_bool_param("DryRun", False):
        return _run_instances(self)
    # "If you repeat the request with the same client token but change another request
    # parameter, Amazon EC2 returns an IdempotentParameterMismatch error." (Ensuring
    # idempotency in Amazon EC2 API requests)
    request = json.dumps({k: v for k, v in self._get_params().items() if k not in ("ClientToken", "DryRun")},
                         sort_keys=True, default=str)
    key = (self.current_account, self.region, token)
    with _tokens_lock:
        known = _tokens.get(key)
        if known is not None:
            if known[0] != request:
                raise EC2ClientError("IdempotentParameterMismatch",
                                     f"the client token {token} was used with other parameters")
            return ActionResult(known[1])
        answer = _run_instances(self)
        _tokens[key] = (request, answer.result)
        return answer


def _run_instances(self: InstanceResponse):
    template = self._get_param("LaunchTemplate", {})
    if template and self._get_param("SubnetId"):
        data = self.ec2_backend._get_template_from_args(template).data
        # "Network interfaces and an instance-level subnet ID may not be specified on the
        # same request" (RunInstances): a template's interfaces are the request's.
        if data.get("NetworkInterfaces"):
            raise InvalidParameterCombination(
                msg="Network interfaces and an instance-level subnet ID may not be specified on the same request"
            )
    answer = _original_run_instances(self)
    for instance in answer.result.instances:
        # DescribeInstances names an instance's Outpost ("OutpostArn: The Amazon Resource
        # Name (ARN) of the Outpost"): the one its subnet is on.
        subnet = self.ec2_backend.get_subnet(instance.subnet_id) if instance.subnet_id else None
        if getattr(subnet, "outpost_arn", None):
            instance.outpost_arn = subnet.outpost_arn
    if self._get_bool_param("DisableApiTermination", False):
        # moto drops RunInstances' DisableApiTermination; its TerminateInstances already
        # refuses a protected instance, as EC2 does (OperationNotPermitted).
        for instance in answer.result.instances:
            instance.disable_api_termination = True
    return answer


def security_groups_of_instance(self: InstanceResponse) -> bool:
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    # ModifyInstanceAttribute Groups: "If the instance has multiple network interfaces ...
    # you must modify the security groups of each network interface" (the API answers
    # InvalidInstanceID with this message).
    if len(getattr(instance, "nics", {})) > 1:
        raise EC2ClientError(
            "InvalidInstanceID",
            f"There are multiple interfaces attached to instance '{instance.id}'. "
            "Please specify an interface ID for the operation instead.",
        )
    answer = _original_groups_handler(self)
    for nic in getattr(instance, "nics", {}).values():
        nic._group_set = list(instance.security_groups)
    return answer


def interface_groups(self: NetworkInterface) -> list[Any]:
    # "Changes the security groups for the network interface. The new set of groups you
    # specify replaces the current set." (ModifyNetworkInterfaceAttribute): an interface's
    # groups are its own, not its instance's added to them.
    if self._group_set or not self.instance:
        return self._group_set
    return list(self.instance.security_groups)


def modify_network_interface_attribute(self: ElasticNetworkInterfaces):
    answer = _original_modify_interface(self)
    if self._get_param("Groups"):
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        if eni.instance is not None:
            groups: list[Any] = []
            for index in sorted(eni.instance.nics):
                groups.extend(g for g in eni.instance.nics[index]._group_set if g not in groups)
            eni.instance.security_groups = groups
    return answer


def delete_security_group(self: SecurityGroupBackend, name: str | None = None, group_id: str | None = None) -> None:
    # "If you attempt to delete a security group that is associated with an instance or
    # network interface ... the operation fails with DependencyViolation." (DeleteSecurityGroup)
    if group_id:
        users = [eni.id for eni in self.enis.values()
                 if eni.instance is not None and eni.instance._state.name != "terminated"
                 and any(getattr(g, "id", g) == group_id for g in eni.group_set)]
        if users:
            raise EC2ClientError("DependencyViolation", f"resource {group_id} has a dependent object")
    return _original_delete_group(self, name=name, group_id=group_id)


def install() -> None:
    SecurityGroupBackend.delete_security_group = delete_security_group
    NetworkInterface.group_set = property(interface_groups)
    ElasticNetworkInterfaces.modify_network_interface_attribute = modify_network_interface_attribute
    Subnets.create_subnet = create_subnet
    Subnets.modify_subnet_attribute = modify_subnet_attribute
    InstanceResponse.run_instances = run_instances
    InstanceResponse._security_grp_instance_attribute_handler = security_groups_of_instance
