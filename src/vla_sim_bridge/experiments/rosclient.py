# Copyright 2026 The humanoid-vla Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
A small rclpy client for the experiment commands: service calls and action goals with timeouts.

One node spins in a background single-threaded executor.  Every request is sent *on* that
executor (rclpy's *_async calls register the request, then add a done callback that removes
it: sent from another thread, a response that arrives in between is removed twice and rclpy
raises ValueError, which stopped a vla-sim-evaluate run in session 8) and waited for through a
done callback, so no result is read from a racing thread.
"""

import os
import threading
import time
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

EXPERIMENT_DOMAIN_ENV = 'ROS_DOMAIN_ID'


def use_domain(domain_id: Optional[int]) -> None:
    """Put this process and the nodes it starts on ROS domain ``domain_id`` (None: keep)."""
    if domain_id is not None:
        os.environ[EXPERIMENT_DOMAIN_ENV] = str(domain_id)


def run_on_executor(executor, send: Callable, timeout: float = 10.0):
    """
    Run ``send`` on the thread that spins ``executor`` and return what it returns.

    rclpy's *_async calls register the request, then add a done callback that removes it; from
    another thread, a response that lands in between is removed twice and rclpy raises
    ValueError.  Sent from the executor's own thread, nothing races.  Exceptions come back here.
    """
    ran = threading.Event()
    box = {}

    def run() -> None:
        try:
            box['value'] = send()
        except Exception as err:  # handed to the caller below
            box['error'] = err
        finally:
            ran.set()

    executor.create_task(run)
    if not ran.wait(timeout):
        raise TimeoutError(f'the executor did not run the request within {timeout:.0f} s')
    if 'error' in box:
        raise box['error']
    return box['value']


class ExperimentClient:
    """One rclpy node spinning in a thread, with blocking helpers built on futures."""

    def __init__(self, name: str = 'vla_experiment', camera_topic: Optional[str] = None) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self._clients = {}
        self._lock = threading.Lock()
        self.last_image: Optional[Image] = None
        self.image_count = 0
        if camera_topic:
            self.node.create_subscription(Image, camera_topic, self._on_image,
                                          qos_profile_sensor_data)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self.last_image = msg
            self.image_count += 1

    def latest_frame(self):
        """Return the newest camera frame as an HxWx3 uint8 array, or None."""
        import numpy as np
        with self._lock:
            msg = self.last_image
        if msg is None:
            return None
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3).copy()

    def on_executor(self, send: Callable, timeout: float = 10.0):
        """Run ``send`` (e.g. a *_async call) on this client's executor; see run_on_executor."""
        return run_on_executor(self.executor, send, timeout)

    def _client(self, srv_type, name: str):
        if name not in self._clients:
            self._clients[name] = self.node.create_client(srv_type, name)
        return self._clients[name]

    def wait_for_service(self, srv_type, name: str, timeout: float = 60.0, alive=None) -> None:
        """Wait until ``name`` is offered; ``alive()`` (if given) may raise when a node died."""
        client = self._client(srv_type, name)
        deadline = time.monotonic() + timeout
        while not client.wait_for_service(timeout_sec=1.0):
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f'service {name} not available after {timeout:.0f} s')

    def wait_for_connections(self, topics: Sequence[str], publisher: str, subscriber: str,
                             timeout: float = 60.0, alive=None) -> None:
        """
        Wait until the graph shows ``publisher`` and ``subscriber`` on every topic.

        ``publisher`` and ``subscriber`` are node names; ``alive()`` (if given) may raise when
        a node died.  A node's services can answer before its subscriptions are discovered: on
        a loaded machine a recorder started an episode that way and received one frame of it.
        """
        deadline = time.monotonic() + timeout
        while True:
            missing = [topic for topic in topics
                       if not self._has_endpoint(topic, publisher, publishing=True)
                       or not self._has_endpoint(topic, subscriber, publishing=False)]
            if not missing:
                return
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f'{publisher} -> {subscriber} not connected on '
                                   f'{", ".join(missing)} after {timeout:.0f} s')
            time.sleep(0.1)

    def _has_endpoint(self, topic: str, node_name: str, publishing: bool) -> bool:
        """Whether the graph lists node ``node_name`` as a publisher (or subscriber) of topic."""
        if publishing:
            endpoints = self.node.get_publishers_info_by_topic(topic)
        else:
            endpoints = self.node.get_subscriptions_info_by_topic(topic)
        return any(endpoint.node_name == node_name for endpoint in endpoints)

    def call(self, srv_type, name: str, request, timeout: float = 60.0, attempts: int = 1):
        """
        Call a service and return its response; TimeoutError when none comes in time.

        ``attempts`` > 1 sends the request again after each ``timeout`` without an answer: only
        for requests that may safely run twice (a reset to a seed).  Fast DDS drops a response
        when the server has not yet matched the client's response reader within 100 ms ("client
        will not receive response"), which happens on a loaded machine right after discovery;
        a clean-clone CI run of the demo lost its first reset that way.
        """
        client = self._client(srv_type, name)
        for _ in range(attempts):
            done = threading.Event()

            def send(done=done):
                future = client.call_async(request)
                future.add_done_callback(lambda _: done.set())
                return future

            future = self.on_executor(send)
            if done.wait(timeout):
                return future.result()
            self.on_executor(lambda future=future: client.remove_pending_request(future))
        raise TimeoutError(f'service {name} did not answer within {timeout:.0f} s '
                           f'({attempts} attempt(s))')

    def reset_for_episode(self, args, index: int) -> tuple:
        """
        Reset the simulation for episode ``index`` of a run; return (seed, family, response).

        Episode i uses seed ``args.seed_start + i`` and ``args.families`` in turn, on
        ``args.split``, so recording and evaluation walk seeds the same way.
        """
        from humanoid_interfaces.srv import ResetSimulation
        seed = args.seed_start + index
        family = args.families[index % len(args.families)]
        response = self.call(ResetSimulation, '/vla_sim/reset', ResetSimulation.Request(
            seed=seed, task=family, instruction='', split=args.split), timeout=30.0, attempts=3)
        return seed, family, response

    def start_recording(self, instruction: str, collector: str = '/vla_collector',
                        timeout: float = 20.0, attempts: int = 3):
        """
        Ask the recorder to start an episode; return its StartEpisode response.

        A start cannot simply be sent again: when only its answer was lost, the recorder has
        begun the episode and refuses a second start.  So after each unanswered start the
        episode (if any) is discarded, which nothing has yet relied on, and the start re-sent.
        """
        from humanoid_interfaces.srv import StartEpisode
        from std_srvs.srv import Trigger
        start, discard = f'{collector}/start_episode', f'{collector}/discard_episode'
        for attempt in range(1, attempts + 1):
            try:
                return self.call(StartEpisode, start,
                                 StartEpisode.Request(instruction=instruction), timeout=timeout)
            except TimeoutError:
                if attempt == attempts:
                    raise
                # Either answer ('episode discarded', 'no episode in progress') will do.
                self.call(Trigger, discard, Trigger.Request(), timeout=timeout, attempts=3)

    def stop_recording(self, success: bool, collector: str = '/vla_collector',
                       timeout: float = 120.0, attempts: int = 2):
        """
        Ask the recorder to end its episode as ``success``; return its SetBool response.

        A stop may be sent again: when only its answer was lost, the recorder has saved the
        episode and answers the second one with success and ``already stopped: <what was
        saved>``; when the first never arrived, the second saves the episode.
        """
        from std_srvs.srv import SetBool
        return self.call(SetBool, f'{collector}/stop_episode', SetBool.Request(data=success),
                         timeout=timeout, attempts=attempts)

    def action_client(self, action_type, name: str) -> ActionClient:
        """Create (once) and return an action client."""
        key = ('action', name)
        if key not in self._clients:
            self._clients[key] = ActionClient(self.node, action_type, name)
        return self._clients[key]

    def run_goal(self, action_type, name: str, goal, timeout: float, on_feedback=None):
        """
        Send one goal and wait for its result; return (accepted, result or None).

        The result request is chained in the goal-response callback, which runs on the
        executor, so the goal handle is never touched from this thread.
        """
        client = self.action_client(action_type, name)
        done = threading.Event()
        outcome = {'accepted': False, 'result': None}

        def on_result(future) -> None:
            outcome['result'] = future.result().result
            done.set()

        def on_goal_response(future) -> None:
            handle = future.result()
            outcome['accepted'] = bool(handle is not None and handle.accepted)
            if not outcome['accepted']:
                done.set()
                return
            handle.get_result_async().add_done_callback(on_result)

        self.on_executor(lambda: client.send_goal_async(
            goal, feedback_callback=on_feedback).add_done_callback(on_goal_response))
        if not done.wait(timeout):
            raise TimeoutError(f'action {name}: no result within {timeout:.0f} s')
        return outcome['accepted'], outcome['result']

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
