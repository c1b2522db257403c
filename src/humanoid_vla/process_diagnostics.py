"""
Stack dumps for long-running node processes.

A node that hangs on shutdown or dies of a segfault otherwise leaves nothing to go on; with
these, a crash prints every thread's Python stack, and so does `kill -USR1 <pid>` on a stuck
process (the tests send it before they kill a node that did not stop).
"""

import faulthandler
import signal

STACK_DUMP_SIGNAL = signal.SIGUSR1


def enable_stack_dumps() -> None:
    """Print all threads' stacks to stderr on a fatal signal and on STACK_DUMP_SIGNAL."""
    faulthandler.enable(all_threads=True)
    faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)


def leave_sigint_to_rclpy() -> None:
    """
    Stop SIGINT from raising KeyboardInterrupt; call before rclpy.init.

    rclpy's own handler (chained to this one) shuts the context down, so spin() ends with
    ExternalShutdownException at a safe point. A KeyboardInterrupt, raised anywhere, once
    landed inside a lock of the executor's thread pool and left it held: shutdown then waited
    forever for a worker (the stack dump of a recorder that did not stop in CI). A second
    SIGINT still raises KeyboardInterrupt, for a process stuck elsewhere.
    """
    def first_sigint(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, first_sigint)
