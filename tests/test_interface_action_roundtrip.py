"""The ExecuteVLATask interface builds, imports and carries a goal, feedback and a result."""

import threading

import pytest

rclpy = pytest.importorskip('rclpy')
from humanoid_interfaces.action import ExecuteVLATask  # noqa: E402, I100 (after the skip)
from rclpy.action import ActionClient, ActionServer  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402

pytestmark = pytest.mark.ros


def test_error_codes_are_distinct_named_constants():
    names = ['SUCCEEDED', 'INVALID_GOAL', 'NO_POLICY', 'CAMERA_TIMEOUT', 'CANCELED', 'PREEMPTED',
             'UNSAFE_ACTION', 'POLICY_ERROR', 'MAX_STEPS_REACHED']
    values = [getattr(ExecuteVLATask.Result, name) for name in names]
    assert len(set(values)) == len(values)
    assert ExecuteVLATask.Result.SUCCEEDED == 0


def test_goal_feedback_and_result_cross_the_middleware(rclpy_context):
    server_node = rclpy.create_node('roundtrip_server', context=rclpy_context)
    client_node = rclpy.create_node('roundtrip_client', context=rclpy_context)
    received_goals = []
    feedback = []

    def execute(goal_handle):
        received_goals.append((goal_handle.request.instruction, goal_handle.request.max_steps))
        for step in range(1, 4):
            message = ExecuteVLATask.Feedback(current_step=step, progress=step / 3.0)
            message.commanded_pose.header.frame_id = 'base_link'
            message.commanded_pose.pose.position.x = 0.1 * step
            message.inference_time_ms = 12.5
            goal_handle.publish_feedback(message)
        # Feedback travels on a topic and the result as a service response, in no fixed order,
        # and rclpy drops a goal's feedback once its result has arrived: succeed only after the
        # client holds all three messages (the wait fails the test below if they never come).
        _wait_for_list(feedback, 3)
        goal_handle.succeed()
        return ExecuteVLATask.Result(
            success=True, error_code=ExecuteVLATask.Result.SUCCEEDED, message='done',
            steps_executed=3)

    server = ActionServer(server_node, ExecuteVLATask, 'execute_vla_task', execute)
    client = ActionClient(client_node, ExecuteVLATask, 'execute_vla_task')
    executor = MultiThreadedExecutor(context=rclpy_context)
    executor.add_node(server_node)
    executor.add_node(client_node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        assert client.wait_for_server(timeout_sec=10.0)
        goal = ExecuteVLATask.Goal(instruction='pick up the red cup', max_steps=3)
        send_future = client.send_goal_async(goal, feedback_callback=lambda msg: feedback.append(
            msg.feedback))
        assert _wait(send_future, 10.0)
        goal_handle = send_future.result()
        assert goal_handle.accepted
        result_future = goal_handle.get_result_async()
        assert _wait(result_future, 10.0)
        result = result_future.result().result
    finally:
        executor.shutdown()
        server.destroy()
        client.destroy()
        spinner.join(timeout=5.0)
    assert received_goals == [('pick up the red cup', 3)]
    assert (result.success, result.error_code, result.message, result.steps_executed) == (
        True, ExecuteVLATask.Result.SUCCEEDED, 'done', 3)
    assert [f.current_step for f in feedback] == [1, 2, 3]
    assert feedback[-1].commanded_pose.pose.position.x == pytest.approx(0.3)
    assert feedback[-1].commanded_pose.header.frame_id == 'base_link'


def _wait(future, timeout: float) -> bool:
    event = threading.Event()
    future.add_done_callback(lambda _: event.set())
    return event.wait(timeout)


def _wait_for_list(items: list, count: int, timeout: float = 5.0) -> bool:
    import time
    deadline = time.monotonic() + timeout
    while len(items) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(items) >= count
