"""record_action_goals: the goals of the action, seen on its status topic, become episodes."""

import json
import os
import time

from action_msgs.msg import GoalStatus
from humanoid_vla.data import validate_file
import pytest
from std_msgs.msg import String

pytestmark = pytest.mark.ros

EXECUTING, SUCCEEDED, ABORTED = (GoalStatus.STATUS_EXECUTING, GoalStatus.STATUS_SUCCEEDED,
                                 GoalStatus.STATUS_ABORTED)


def test_each_goal_is_recorded_with_its_instruction_and_outcome(harness, start_collector,
                                                                tmp_path, wait_until):
    def announce(goal: bytes, instruction: str) -> None:
        harness.instruction.publish(String(data=json.dumps(
            {'goal_id': goal.hex(), 'instruction': instruction})))

    def saved(count: int) -> bool:
        return process.output.count(' saved (success=') == count

    # A goal already running when the recorder starts is not recorded half-way.
    old, old_time = os.urandom(16), harness._now() - 5.0
    harness.publish_goals([(old, EXECUTING, old_time)])
    process = start_collector(tmp_path, record_action_goals=True,
                              instruction_topic=f'{harness.ns}/vla_server/active_instruction')
    assert 'started before this recorder' in process.output

    # The status may announce the goal before its instruction arrives: recording waits for it.
    a = os.urandom(16)
    harness.publish_goals([(old, EXECUTING, old_time), (a, EXECUTING, harness._now())])
    time.sleep(0.3)
    announce(a, 'pick up the red cup')
    time.sleep(0.8)
    harness.publish_goals([(old, SUCCEEDED, old_time), (a, SUCCEEDED, harness._now())])
    assert wait_until(lambda: saved(1), timeout=10.0), process.output

    # b is preempted by c: both EXECUTING for a moment; c is recorded once b has ended.
    b, c = os.urandom(16), os.urandom(16)
    announce(b, 'open the drawer')
    harness.publish_goals([(a, SUCCEEDED, 0.0), (b, EXECUTING, harness._now())])
    time.sleep(0.8)
    announce(c, 'close the drawer')
    harness.publish_goals([(b, EXECUTING, 0.0), (c, EXECUTING, harness._now())])
    time.sleep(0.1)
    harness.publish_goals([(b, ABORTED, 0.0), (c, EXECUTING, harness._now())])
    time.sleep(0.8)
    harness.publish_goals([(b, ABORTED, 0.0), (c, SUCCEEDED, harness._now())])
    assert wait_until(lambda: saved(3), timeout=10.0), process.output

    report = validate_file(tmp_path / 'demos.hdf5')
    assert report.ok, report.problems
    assert [(e.instruction, e.success) for e in report.episodes] == [
        ('pick up the red cup', True), ('open the drawer', False), ('close the drawer', True)]
    assert all(e.length >= 5 for e in report.episodes)
    assert process.stop() == 0
