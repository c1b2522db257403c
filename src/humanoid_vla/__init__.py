"""
ROS-free core of the humanoid VLA stack.

Everything a robot, a trainer or an evaluator needs that does not depend on a ROS graph lives here,
so it can be tested and reused without rclpy (this package must never import it).
"""

__version__ = '0.1.0'
