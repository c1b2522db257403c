"""
Throughput of the demonstration recorder (the real vla_collector node) on two 640x480 cameras.

Publishes two rgb8 cameras at 30 Hz, joint states at 100 Hz and the commanded right-hand pose and
gripper at 30 Hz for --seconds, while the node records every frame (sample_rate_hz = the camera
rate) into a temporary dataset; then writes the same frames with plain h5py (same chunking, one
frame per chunk, and the same compression) and compares. Prints plain ``name: value`` lines:
frames published, received and written, steps dropped (stale inputs, full write queue, malformed),
the recorder's write rate (image bytes over the wall and CPU time of its writer thread, from the
episode summary) against raw h5py's, and the CPU use of the recorder process (from /proc).

Frames of 900 kB sent best effort are mostly lost by Fast DDS's default transports (a bare
subscriber gets about a third of them on a small machine): unless FASTDDS_DEFAULT_PROFILES_FILE
is set or --default-transport is given, the run uses a profile with a 32 MB shared-memory segment.

Run: ``tools/run_in_env.sh python benchmarks/recorder_throughput.py [--seconds 20]``
"""

import argparse
import os
from pathlib import Path
import random
import re
import subprocess
import tempfile
import threading
import time

from ament_index_python.packages import get_package_prefix
from geometry_msgs.msg import PoseStamped
import h5py
from humanoid_interfaces.srv import StartEpisode
from humanoid_vla.data import validate_file
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import SetBool

NS = '/bench'
FASTDDS_PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_frames.xml'
CAMERAS = ('head', 'wrist')
DISTINCT_FRAMES = 30


def make_frames(camera: int, height: int, width: int) -> list[np.ndarray]:
    """Return camera-like frames: smooth shading, a moving bright box and sensor noise."""
    rng = np.random.default_rng(camera)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 200 // width, y * 200 // height, (x + y) * 100 // (width + height)],
                    axis=-1).astype(np.int16)
    frames = []
    for k in range(DISTINCT_FRAMES):
        frame = base + rng.integers(0, 3, base.shape, dtype=np.int16)
        top, left = (k * 7) % (height - 80), (k * 13 + camera * 50) % (width - 120)
        frame[top:top + 80, left:left + 120] = (230, 60 + camera * 100, 40)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU time of a process (all its threads) from /proc."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Publisher:
    """Cameras, joint states and commands on their own thread, at fixed rates."""

    def __init__(self, node, frames: list[list[np.ndarray]], camera_hz: float) -> None:
        self.node = node
        self.camera_hz = camera_hz
        self.cameras = [node.create_publisher(Image, f'{NS}/{name}/image',
                                              qos_profile_sensor_data) for name in CAMERAS]
        self.joints = node.create_publisher(JointState, f'{NS}/joint_states',
                                            qos_profile_sensor_data)
        self.pose = node.create_publisher(PoseStamped, f'{NS}/right_target', 10)
        self.gripper = node.create_publisher(Float64, f'{NS}/right_gripper', 10)
        height, width = frames[0][0].shape[:2]
        self.messages = [[Image(height=height, width=width, encoding='rgb8', step=width * 3,
                                data=frame.tobytes()) for frame in camera] for camera in frames]
        self.published = 0  # frames per camera
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start publishing."""
        self._running.set()
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing."""
        self._running.clear()
        self._thread.join()

    def _run(self) -> None:
        periods = {'frames': 1.0 / self.camera_hz, 'joints': 0.01, 'commands': 1.0 / 30.0}
        due = dict.fromkeys(periods, time.monotonic())
        joint_names = [f'joint_{i}' for i in range(30)]
        while self._running.is_set():
            stream = min(due, key=due.get)
            time.sleep(max(0.0, due[stream] - time.monotonic()))
            due[stream] += periods[stream]
            now = self.node.get_clock().now()
            if stream == 'joints':
                msg = JointState(name=joint_names, position=[0.1] * 30)
                msg.header.stamp = now.to_msg()
                self.joints.publish(msg)
            elif stream == 'commands':
                pose = PoseStamped()
                pose.header.stamp = now.to_msg()
                pose.pose.position.x, pose.pose.position.z = 0.3, 1.0
                pose.pose.orientation.w = 1.0
                self.pose.publish(pose)
                self.gripper.publish(Float64(data=0.5))
            else:
                for camera, publisher in zip(self.messages, self.cameras):
                    msg = camera[self.published % DISTINCT_FRAMES]
                    msg.header.stamp = now.to_msg()
                    publisher.publish(msg)
                self.published += 1


def call(client, request, timeout: float):
    """Call a service (spun on another thread) and return the response."""
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise TimeoutError(f'{client.srv_name} did not answer within {timeout} s')
    return future.result()


def raw_h5py_seconds(path: Path, frames: list[list[np.ndarray]], count: int,
                     compression) -> tuple[float, float]:
    """Write `count` frames per camera with plain h5py; return (wall, CPU) seconds."""
    started, cpu_started = time.perf_counter(), time.thread_time()
    with h5py.File(path, 'w') as file:
        datasets = [file.create_dataset(
            f'{name}_rgb', shape=(0, *frames[0][0].shape), maxshape=(None, *frames[0][0].shape),
            dtype=np.uint8, chunks=(1, *frames[0][0].shape), compression=compression)
            for name in CAMERAS]
        for k in range(count):
            for dataset, camera in zip(datasets, frames):
                dataset.resize(k + 1, axis=0)
                dataset[k] = camera[k % DISTINCT_FRAMES]
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - started, time.thread_time() - cpu_started


def main() -> None:
    """Record through the real node, then write the same frames with h5py; print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--seconds', type=float, default=120.0)
    parser.add_argument('--rate', type=float, default=30.0, help='camera and sample rate (Hz)')
    parser.add_argument('--size', type=int, nargs=2, default=(480, 640), metavar=('H', 'W'))
    parser.add_argument('--compression', default='lzf', choices=('lzf', 'gzip', 'none'))
    parser.add_argument('--data-dir', type=Path, default=None,
                        help='where to record (default: a temporary directory, removed after)')
    parser.add_argument('--default-transport', action='store_true',
                        help="keep Fast DDS's default transports (most large frames are lost)")
    args = parser.parse_args()
    # A graph of our own on this machine only (read by rclpy.init and by the recorder).
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.randint(101, 200)))
    frames = [make_frames(i, *args.size) for i in range(len(CAMERAS))]
    with tempfile.TemporaryDirectory(dir=args.data_dir) as directory:
        transport = 'Fast DDS defaults'
        if os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE'):
            transport = os.environ['FASTDDS_DEFAULT_PROFILES_FILE']
        elif not args.default_transport:
            os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(FASTDDS_PROFILE)
            transport = 'Fast DDS with a 32 MB shared-memory segment'
        run(args, frames, Path(directory), transport)


def run(args, frames: list[list[np.ndarray]], directory: Path, transport: str) -> None:
    """Run the benchmark with the dataset in `directory`."""
    executable = Path(get_package_prefix('vla_collector')) / 'lib' / 'vla_collector' / \
        'vla_collector'
    params = {
        'data_dir': str(directory), 'sample_rate_hz': args.rate,
        'camera_topics': '[' + ', '.join(f'{NS}/{c}/image' for c in CAMERAS) + ']',
        'camera_names': '[' + ', '.join(CAMERAS) + ']',
        'joint_states_topic': f'{NS}/joint_states', 'right_hand_pose_topic': f'{NS}/right_target',
        'right_gripper_topic': f'{NS}/right_gripper', 'image_compression': args.compression,
    }
    argv = [str(executable), '--ros-args', '-r', f'__ns:={NS}']
    for name, value in params.items():
        argv += ['-p', f'{name}:={value}']
    log = tempfile.TemporaryFile(mode='w+')
    recorder = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    node = rclpy.create_node('recorder_benchmark')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    publisher = Publisher(node, frames, args.rate)
    start = node.create_client(StartEpisode, f'{NS}/vla_collector/start_episode')
    stop = node.create_client(SetBool, f'{NS}/vla_collector/stop_episode')
    try:
        if not start.wait_for_service(timeout_sec=30.0):
            raise RuntimeError('the recorder never offered its services')
        publisher.start()
        time.sleep(2.0)  # Discovery and the first messages of every input.
        response = call(start, StartEpisode.Request(instruction='benchmark'), 30.0)
        if not response.accepted:
            raise RuntimeError(response.message)
        published_before, cpu_before, wall_before = (
            publisher.published, cpu_seconds(recorder.pid), time.monotonic())
        time.sleep(args.seconds)
        response = call(stop, SetBool.Request(data=True), 120.0)
        cpu = cpu_seconds(recorder.pid) - cpu_before
        wall = time.monotonic() - wall_before
        published = publisher.published - published_before
        publisher.stop()
    finally:
        recorder.terminate()
        recorder.wait(30)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    if not response.success:
        raise RuntimeError(f'stop_episode failed: {response.message}')
    summary = response.message
    number = {key: float(re.search(pattern, summary).group(1)) for key, pattern in {
        'steps': r'(\d+) steps', 'stale': r'(\d+) dropped \(stale', 'malformed': r'(\d+) malf',
        'queue': r'(\d+) dropped \(write queue', 'rejected': r'(\d+) rejected',
        'busy': r'writer busy ([\d.]+) s', 'cpu': r'\(([\d.]+) s CPU\)'}.items()}
    received = [int(n) for n in re.findall(r'(?:head|wrist) (\d+)', summary.split(';')[1])]
    report = validate_file(directory / 'demos.hdf5')
    steps = int(number['steps'])
    on_disk = sum(p.stat().st_size for p in (directory / 'demos.episodes').glob('*.hdf5'))
    raw_wall, raw_cpu = raw_h5py_seconds(directory / 'raw.hdf5', frames, steps,
                                         None if args.compression == 'none' else args.compression)
    megabytes = steps * len(CAMERAS) * frames[0][0].nbytes / 1e6

    print(f'setup: {len(CAMERAS)} cameras {args.size[1]}x{args.size[0]} rgb8 at {args.rate:g} Hz, '
          f'joint states 100 Hz, commands 30 Hz, compression {args.compression}, {wall:.1f} s '
          f'recorded, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), {transport}')
    print(f'frames published per camera: {published}')
    print(f'frames received per camera: {", ".join(map(str, received))}')
    print(f'frames written per camera (steps): {steps}')
    print(f'steps dropped: stale inputs {int(number["stale"])}, write queue full '
          f'{int(number["queue"])}, malformed {int(number["malformed"])}, rejected '
          f'{int(number["rejected"])}')
    if 'last drop:' in summary:
        print(f"last drop reason: {summary.split('last drop: ')[1].split('; instruction')[0]}")
    print(f'dataset valid: {report.ok}, {on_disk / 1e6:.1f} MB on disk for {megabytes:.1f} MB of '
          'images')
    print(f'recorder write rate: {megabytes / number["busy"]:.1f} MB/s wall, '
          f'{megabytes / number["cpu"]:.1f} MB/s per CPU second (writer thread busy '
          f'{number["busy"]:.2f} s, {number["cpu"]:.2f} s CPU, of {wall:.1f} s)')
    print(f'raw h5py write rate: {megabytes / raw_wall:.1f} MB/s wall, '
          f'{megabytes / raw_cpu:.1f} MB/s per CPU second (same frames, {raw_wall:.2f} s)')
    print(f'recorder / raw h5py: {100.0 * raw_wall / number["busy"]:.0f} % wall, '
          f'{100.0 * raw_cpu / number["cpu"]:.0f} % per CPU second')
    print(f'recorder process CPU: {100.0 * cpu / wall:.0f} % of one core')


if __name__ == '__main__':
    main()
