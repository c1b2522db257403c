"""The recorder's pure parts: the step schedule, input histories, goal instructions."""

import numpy as np
import pytest
from vla_collector.alignment import CameraFrames, History
from vla_collector.sampling import StepSchedule


def sampled(camera_hz: float, rate_hz: float, seconds: float, jitter: float = 0.0) -> list:
    """Return the stamps a schedule picks from a camera running for `seconds`."""
    rng = np.random.default_rng(0)
    schedule, taken = StepSchedule(rate_hz), []
    for k in range(int(seconds * camera_hz)):
        stamp = 100.0 + k / camera_hz + rng.uniform(-jitter, jitter)
        schedule.observe(stamp)
        if schedule.due(stamp):
            schedule.take(stamp)
            taken.append(stamp)
    return taken


@pytest.mark.parametrize('camera_hz, rate_hz', [(30, 10), (20, 10), (30, 30), (60, 25)])
def test_schedule_keeps_the_rate_with_even_spacing(camera_hz, rate_hz):
    taken = sampled(camera_hz, rate_hz, 10.0, jitter=0.002)
    assert len(taken) == pytest.approx(10 * rate_hz, abs=2)
    gaps = np.diff(taken)
    assert np.all(gaps > 0.5 / rate_hz) and np.all(gaps < 1.5 / rate_hz + 1.0 / camera_hz)


def test_schedule_takes_every_frame_of_a_slower_camera_and_restarts_after_a_gap():
    assert len(sampled(5, 10, 4.0)) == 20
    schedule = StepSchedule(10.0)
    for stamp in (1.0, 1.1, 5.0, 5.1):  # a 3.9 s gap
        assert schedule.due(stamp)
        schedule.take(stamp)
    assert not schedule.due(5.1) and not schedule.due(5.0)  # never back in time
    schedule.reset()
    assert schedule.due(0.5)


def test_history_returns_the_value_in_force_at_a_time():
    history = History()
    assert history.at(1.0).value is None and history.newest_time == float('-inf')
    for t in (1.0, 2.0, 3.0):
        history.add(t, f'v{t}')
    assert history.at(0.5).value is None
    assert history.at(2.0).value == 'v2.0' and history.at(2.9).value == 'v2.0'
    assert history.at(9.0).time == 3.0 and history.newest_time == 3.0


def test_camera_frames_convert_lazily_and_report_each_malformed_frame_once():
    calls, errors = [], []

    def convert(msg):
        calls.append(msg)
        if msg == 'bad':
            raise ValueError('malformed')
        return msg.upper()

    frames = CameraFrames(convert, ValueError)
    frames.add(1.0, 'a')
    frames.add(2.0, 'bad')
    frames.add(3.0, 'c')
    assert calls == []
    assert frames.nearest(2.1, errors.append).value in ('A', 'C')
    assert frames.nearest(2.1, errors.append).time in (1.0, 3.0)
    assert errors == ['malformed'] and calls.count('bad') == 1
    assert frames.nearest(3.2, errors.append).value == 'C' and frames.newest_time == 3.0


def test_goal_instructions_are_read_from_json_or_plain_text():
    from vla_collector.collector_node import parse_goal_instruction
    uuid = 'AB' * 16
    assert parse_goal_instruction(f'{{"goal_id": "{uuid}", "instruction": "pick"}}') == (
        uuid.lower(), 'pick')
    assert parse_goal_instruction('pick up the cup') == (None, 'pick up the cup')
    assert parse_goal_instruction('[1, 2]') == (None, '[1, 2]')
