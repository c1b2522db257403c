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


class ServiceHost:
    """A node in its own context, spun on a thread, that stands in for a service provider."""

    def __init__(self, node_name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(node_name, context=self.context)

    def spin(self) -> None:
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.close_unspun()

    def close_unspun(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


class SlowFirstServer(ServiceHost):
    """A Trigger service whose first answer comes late, as a response lost on the way would."""

    def __init__(self, first_delay_s: float) -> None:
        super().__init__('slow_first_server')
        self.requests = 0
        self.first_delay_s = first_delay_s
        self.node.create_service(Trigger, SERVICE, self._on_request)
        self.spin()

    def _on_request(self, request, response):
        self.requests += 1
        if self.requests == 1:
            time.sleep(self.first_delay_s)
        response.success = True
        response.message = f'answer to request {self.requests}'
        return response


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


class StandInRecorder(ServiceHost):
    """
    The recorder's start, stop and discard services, one of them late with its first answer.

    ``late`` ('start' or 'stop') names which. The real recorder cannot be made to lose an
    answer; this one keeps its rules: a second start is refused while an episode is open, and
    a stop that follows a saved episode answers 'already stopped: <what was saved>'
    (vla_collector's test_collector_recording checks them on the real node).
    """

    def __init__(self, first_delay_s: float, late: str = 'start') -> None:
        from humanoid_interfaces.srv import StartEpisode
        from std_srvs.srv import SetBool
        super().__init__('stand_in_recorder')
        self.first_delay_s = first_delay_s
        self.late = late
        self.starts = self.stops = self.discards = 0
        self.open_episode = None
        self.saved: list[str] = []
        self.last_saved = None
        self.node.create_service(StartEpisode, f'{RECORDER}/start_episode', self._on_start)
        self.node.create_service(SetBool, f'{RECORDER}/stop_episode', self._on_stop)
        self.node.create_service(Trigger, f'{RECORDER}/discard_episode', self._on_discard)
        self.spin()

    def _on_start(self, request, response):
        self.starts += 1
        if self.open_episode is not None:
            response.accepted, response.message = False, 'an episode is already being recorded'
            return response
        self.open_episode, self.last_saved = request.instruction, None
        if self.late == 'start' and self.starts == 1:
            time.sleep(self.first_delay_s)
        response.accepted, response.message = True, f'recording {request.instruction!r}'
        return response

    def _on_stop(self, request, response):
        self.stops += 1
        if self.open_episode is None:
            response.success = self.last_saved is not None
            response.message = (f'already stopped: {self.last_saved}' if response.success
                                else 'no episode in progress')
            return response
        self.saved.append(self.open_episode)
        self.last_saved = f'demo_{len(self.saved) - 1} saved (success={request.data})'
        self.open_episode = None
        if self.late == 'stop' and self.stops == 1:
            time.sleep(self.first_delay_s)
        response.success, response.message = True, self.last_saved
        return response

    def _on_discard(self, request, response):
        self.discards += 1
        response.success = self.open_episode is not None
        response.message = 'episode discarded' if response.success else 'no episode in progress'
        self.open_episode = self.last_saved = None
        return response


RECORDER = '/experiment_client_test_recorder'


def test_a_start_whose_answer_is_lost_is_discarded_and_sent_again():
    from humanoid_interfaces.srv import StartEpisode
    recorder = StandInRecorder(first_delay_s=1.5)
    client = ExperimentClient('experiment_client_test')
    try:
        client.wait_for_service(StartEpisode, f'{RECORDER}/start_episode', timeout=30.0)
        client.wait_for_service(Trigger, f'{RECORDER}/discard_episode', timeout=30.0)
        response = client.start_recording('touch the red cup', collector=RECORDER, timeout=1.0)
        assert response.accepted, response.message
        # The first start opened the episode but its answer came too late: a plain re-send
        # would have been refused; the client discarded that episode and started a fresh one.
        assert recorder.discards >= 1
        assert recorder.starts >= 2
        assert recorder.open_episode == 'touch the red cup'
    finally:
        client.close()
        recorder.close()


def test_a_stop_whose_answer_is_lost_is_sent_again_and_told_what_was_saved():
    from std_srvs.srv import SetBool
    recorder = StandInRecorder(first_delay_s=1.5, late='stop')
    client = ExperimentClient('experiment_client_test')
    try:
        client.wait_for_service(SetBool, f'{RECORDER}/stop_episode', timeout=30.0)
        assert client.start_recording('touch the red cup', collector=RECORDER).accepted
        response = client.stop_recording(True, collector=RECORDER, timeout=1.0)
        # The first stop saved the episode but its answer came too late; the re-sent stop
        # says so instead of 'no episode in progress', and nothing was saved twice.
        assert response.success, response.message
        assert response.message == 'already stopped: demo_0 saved (success=True)'
        assert recorder.stops == 2 and recorder.saved == ['touch the red cup']
    finally:
        client.close()
        recorder.close()


def test_waiting_for_connections_returns_once_both_ends_are_in_the_graph():
    from std_msgs.msg import Float64
    talker, listener = ServiceHost('connection_talker'), ServiceHost('connection_listener')
    client = ExperimentClient('experiment_client_test')
    topics = ['/experiment_client_test/a', '/experiment_client_test/b']
    try:
        for topic in topics:
            talker.node.create_publisher(Float64, topic, 10)
        listener.node.create_subscription(Float64, topics[0], lambda msg: None, 10)
        # The listener is missing on one topic: the wait names it when it gives up.
        with pytest.raises(TimeoutError, match='not connected on /experiment_client_test/b '):
            client.wait_for_connections(topics, 'connection_talker', 'connection_listener',
                                        timeout=1.0)
        listener.node.create_subscription(Float64, topics[1], lambda msg: None, 10)
        client.wait_for_connections(topics, 'connection_talker', 'connection_listener',
                                    timeout=30.0)
        checks = []

        def alive():
            checks.append(1)
            raise RuntimeError('the talker died')

        # A node that died ends the wait at once with the caller's error.
        with pytest.raises(RuntimeError, match='the talker died'):
            client.wait_for_connections(topics, 'connection_talker', 'nobody', timeout=30.0,
                                        alive=alive)
        assert checks == [1]
    finally:
        client.close()
        talker.close_unspun()
        listener.close_unspun()
