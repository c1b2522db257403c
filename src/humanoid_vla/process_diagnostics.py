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
