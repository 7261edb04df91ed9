"""moto server with the test doubles for what moto 5.2 lacks. Run it like `moto_server`
(same arguments):

- `ssm_automation_double.py`: SSM Automation (Start/Get/DescribeAutomationExecutions) and
  the backup runbook's effect and status-change events;
- `aws_event_doubles.py`: `AWS::CloudWatch::Alarm` in templates, alarm state-change
  events on SetAlarmState, (opt-in) EC2 instance state-change events, and PutEvents' size
  limit;
- `outposts_network_double.py`: local network interfaces (LNIs) and the network-interface
  rules RunInstances and ModifyInstanceAttribute enforce;
- `ssm_run_command_double.py`: SendCommand's refusals, a command's run and its status-change
  event, and the witness probe's output;
- `outposts_api_double.py`: the Outposts API's ListOutposts (moto has no Outposts service);
- `cloudwatch_cbor_double.py`: CloudWatch over RPC v2 CBOR, the Rust SDK's protocol for it;
- `iam_policy_double.py`: IAM policies evaluated, resources and conditions included, for
  callers with a role's or a user's credentials.
"""

import sys

import aws_event_doubles
import cloudwatch_cbor_double
import iam_policy_double
import outposts_api_double
import outposts_network_double
import ssm_automation_double  # noqa: F401 - installs itself on import
import ssm_run_command_double
from moto.server import main

if __name__ == "__main__":
    aws_event_doubles.install()
    outposts_network_double.install()
    outposts_api_double.install()
    iam_policy_double.install()
    cloudwatch_cbor_double.install()
    ssm_run_command_double.install()
    main(sys.argv[1:])
