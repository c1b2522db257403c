"""
The ROS-free half of the VLA server: goal checks, the per-tick control step, goal statistics.

The server node only moves messages in and out; what a tick does, and why a goal is refused or
ended, is decided here so it can be tested without a ROS graph.
"""
