"""The experiment client's service calls over the real middleware: answers, timeouts, re-sends."""

import threading
import time

import pytest

pytest.importorskip('rclpy')
import rclpy  # noqa: E402, I100 (after the skip)
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from vla_sim_bridge.experiments.rosclient import ExperimentClient  # noqa: E402

pytestmark = pytest.mark.ros

SERVICE = '/experiment_client_test/trigger'


class SlowFirstServer:
    """A Trigger service whose first answer comes late, as a response lost on the way would."""

    def __init__(self, first_delay_s: float) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('slow_first_server', context=self.context)
        self.requests = 0
        self.first_delay_s = first_delay_s
        self.node.create_service(Trigger, SERVICE, self._on_request)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_request(self, request, response):
        self.requests += 1
        if self.requests == 1:
            time.sleep(self.first_delay_s)
        response.success = True
        response.message = f'answer to request {self.requests}'
        return response

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def server_and_client():
    server = SlowFirstServer(first_delay_s=3.0)
    client = ExperimentClient('experiment_client_test')
    try:
        client.wait_for_service(Trigger, SERVICE, timeout=30.0)
        yield server, client
    finally:
        client.close()
        server.close()


def test_a_call_without_an_answer_in_time_raises_timeout(server_and_client):
    server, client = server_and_client
    with pytest.raises(TimeoutError, match='did not answer within 1 s'):
        client.call(Trigger, SERVICE, Trigger.Request(), timeout=1.0)
    assert server.requests == 1


def test_a_repeatable_call_is_sent_again_and_takes_the_answer_that_comes(server_and_client):
    server, client = server_and_client
    response = client.call(Trigger, SERVICE, Trigger.Request(), timeout=1.0, attempts=5)
    assert response.success
    # The first answer (3 s late) went to a request the client had given up on; the one that
    # arrives is for a later re-send, and the server saw more than one request.
    assert response.message != 'answer to request 1'
    assert server.requests >= 2
