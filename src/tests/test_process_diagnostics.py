"""A stuck process dumps every thread's stack on SIGUSR1 (what the tests rely on to see hangs)."""

import signal
import subprocess
import sys
import time

from humanoid_vla.process_diagnostics import STACK_DUMP_SIGNAL

STUCK_PROGRAM = """
import threading, time
from humanoid_vla.process_diagnostics import enable_stack_dumps
enable_stack_dumps()
def stuck_in_a_worker_thread():
    time.sleep(60)
threading.Thread(target=stuck_in_a_worker_thread, daemon=True).start()
print('ready', flush=True)
time.sleep(60)
"""


def test_stack_dump_signal_prints_every_threads_stack_and_the_process_goes_on():
    process = subprocess.Popen([sys.executable, '-c', STUCK_PROGRAM], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == 'ready'
        process.send_signal(STACK_DUMP_SIGNAL)
        time.sleep(0.5)
        assert process.poll() is None  # a dump does not end the process
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=10)
    assert 'stuck_in_a_worker_thread' in stderr
    assert '<module>' in stderr  # the main thread too


def test_a_segfault_prints_the_stack_of_the_crashing_code():
    program = ('import ctypes\nfrom humanoid_vla.process_diagnostics import enable_stack_dumps\n'
               'enable_stack_dumps()\ndef crash_here():\n    ctypes.string_at(0)\ncrash_here()\n')
    result = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == -signal.SIGSEGV
    assert 'Segmentation fault' in result.stderr and 'crash_here' in result.stderr


def test_the_first_sigint_raises_nothing_and_the_second_interrupts():
    program = ('import os, signal, time\nfrom humanoid_vla.process_diagnostics import '
               'leave_sigint_to_rclpy\nleave_sigint_to_rclpy()\nos.kill(os.getpid(), '
               'signal.SIGINT)\ntime.sleep(0.2)\nprint("survived the first", flush=True)\n'
               'os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\nprint("not reached")\n')
    result = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                            timeout=30)
    assert 'survived the first' in result.stdout and 'not reached' not in result.stdout
    assert 'KeyboardInterrupt' in result.stderr
