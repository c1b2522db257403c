"""vla-sim-report turns evaluation results into a markdown table, a bar plot and a strip."""

import json

import cv2
import numpy as np
import pytest
from vla_sim_bridge.experiments import report
from vla_sim_bridge.experiments.evaluate import (build_parser, results_header, server_overrides,
                                                 step_budgets, summarise)


def _episode(family, split, success, seed, frames=()):
    return {'family': family, 'split': split, 'success': success, 'seed': seed, 'steps': 12,
            'instruction': f'do {family} {seed}', 'frames': list(frames)}


def _write_run(directory, label, split, outcomes, frames=False):
    frames_dir = directory / f'{label}_{split}_frames'
    episodes = []
    for seed, (family, success) in enumerate(outcomes):
        names = []
        if frames and seed == 0:
            frames_dir.mkdir(exist_ok=True)
            for k in range(3):
                name = f'{family}_{seed}_{k}.png'
                cv2.imwrite(str(frames_dir / name), np.full((32, 32, 3), 40 * k, np.uint8))
                names.append(name)
        episodes.append(_episode(family, split, success, seed, names))
    data = {'label': label, 'mode': 'expert' if label == 'expert' else 'policy',
            'split': split, 'command': f'vla-sim-evaluate --label {label}',
            'frames_dir': frames_dir.name, 'episodes': episodes,
            'summary': summarise(episodes), 'wall_seconds': 1.0}
    path = directory / f'{label}_{split}.json'
    path.write_text(json.dumps(data))
    return path


def test_report_table_plot_and_strip(tmp_path):
    paths = [
        _write_run(tmp_path, 'model', 'train',
                   [('touch', True), ('pick_place', False), ('touch', True),
                    ('pick_place', True)], frames=True),
        _write_run(tmp_path, 'blind', 'train',
                   [('touch', False), ('pick_place', False), ('touch', True),
                    ('pick_place', False)]),
        _write_run(tmp_path, 'expert', 'novel', [('touch', True), ('pick_place', True)]),
    ]
    runs = report.load_results([str(p) for p in paths])
    table = report.markdown_table(runs)
    assert '| task | split | model | blind | expert |' in table
    assert '| touch | train | 2/2 (100%) | 1/2 (50%) | - |' in table
    assert '| pick_place | train | 1/2 (50%) | 0/2 (0%) | - |' in table
    assert '| touch | novel | - | - | 1/1 (100%) |' in table
    assert '| **all** | train | 3/4 (75%) | 1/4 (25%) | - |' in table

    out = tmp_path / 'report'
    readme = report.write_report(runs, out, notes='# notes\nhello')
    text = readme.read_text()
    assert 'hello' in text and table in text and 'vla-sim-evaluate --label blind' in text
    assert text.startswith('# notes\nhello') and text.count('\n# ') == 0  # one title
    untitled = report.write_report(runs, tmp_path / 'untitled', notes='hello').read_text()
    assert untitled.startswith('# Closed-loop results in simulation\n\nhello')
    plot = cv2.imread(str(out / 'success_rates.png'))
    assert plot is not None and plot.shape == (480, 960, 3) and plot.std() > 0
    strip = cv2.imread(str(out / 'episodes_strip.png'))
    assert strip is not None and strip.shape[1] == 3 * 160
    assert sorted(p.name for p in (out / 'data').iterdir()) == sorted(p.name for p in paths)


def test_ten_labels_get_ten_colours_and_a_legend_that_wraps(tmp_path):
    labels = [f'run_{i}' for i in range(10)]
    paths = [_write_run(tmp_path, label, 'train', [('touch', True)]) for label in labels]
    layout = report.legend_layout(len(labels), 960)
    assert len(set(layout)) == 10 and {row for _, row in layout} == {0, 1}
    assert all(x + report.LEGEND_ENTRY_W <= 960 + 10 for x, _ in layout)
    plot = report.bar_plot(report.load_results([str(p) for p in paths]))
    assert plot.shape == (480 + report.LEGEND_ROW_H, 960, 3)  # one more legend row
    colours = {tuple(int(v) for v in c) for c in plot.reshape(-1, 3)}
    assert set(report.BAR_COLOURS) <= colours and len(set(report.BAR_COLOURS)) == 10


def test_legend_entries_are_wide_enough_for_their_labels():
    assert report.legend_entry_width(['expert', 'model']) == report.LEGEND_ENTRY_W
    wide = report.legend_entry_width(['blind_touch_path_with_a_long_name'])
    assert wide > report.LEGEND_ENTRY_W
    xs = [x for x, _ in report.legend_layout(4, 960, entry_w=wide)]
    assert all(b - a == wide for a, b in zip(xs, xs[1:]) if b > a)


def test_report_main_prints_the_table(tmp_path, capsys):
    path = _write_run(tmp_path, 'model', 'novel', [('touch', False)])
    assert report.main([str(path), '--out', str(tmp_path / 'out')]) == 0
    assert '| touch | novel | 0/1 (0%) |' in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / 'out' / 'success_rates.png')) is not None
    assert not (tmp_path / 'out' / 'episodes_strip.png').exists()


def test_summary_and_step_budgets():
    summary = summarise([_episode('touch', 'train', True, 0),
                         _episode('touch', 'train', False, 1)])
    assert summary['touch'] == {'episodes': 2, 'successes': 1, 'success_rate': 0.5}
    assert summary['all']['episodes'] == 2
    assert step_budgets('touch=10') == {'touch': 10, 'pick_place': 80}


def test_summary_splits_pick_place_by_relation():
    episodes = [dict(_episode('pick_place', 'train', True, 0), relation='next_to'),
                dict(_episode('pick_place', 'train', False, 1), relation='next_to'),
                dict(_episode('pick_place', 'train', True, 2), relation='on'),
                dict(_episode('touch', 'train', False, 3), relation=None)]
    summary = summarise(episodes)
    assert summary['pick_place'] == {'episodes': 3, 'successes': 2, 'success_rate': 2 / 3}
    assert summary['pick_place/next_to'] == {'episodes': 2, 'successes': 1, 'success_rate': 0.5}
    assert summary['pick_place/on']['successes'] == 1
    assert summary['touch']['episodes'] == 1 and 'touch/None' not in summary
    assert summary['all'] == {'episodes': 4, 'successes': 2, 'success_rate': 0.5}


def test_server_overrides_become_ros_arguments():
    assert server_overrides([]) == []
    assert server_overrides(['replan_steps:=2', ' temporal_ensembling := true']) == [
        '-p', 'replan_steps:=2', '-p', 'temporal_ensembling:=true']
    for bad in ('replan_steps=2', ':=2', 'replan_steps:='):
        with pytest.raises(ValueError, match='NAME:=VALUE'):
            server_overrides([bad])


def test_results_keep_the_checkpoint_path_as_given():
    args = build_parser().parse_args(['--checkpoint', 'checkpoints/default', '--episodes', '2',
                                      '--out', 'x.json', '--server-param', 'replan_steps:=2'])
    header = results_header(args, step_budgets(None), 'x_frames')
    assert header['checkpoint'] == 'checkpoints/default'
    assert header['server_params'] == ['replan_steps:=2'] and header['mode'] == 'policy'
    expert = results_header(build_parser().parse_args(['--expert', '--episodes', '2', '--out',
                                                       'x.json']), {}, 'x_frames')
    assert expert['checkpoint'] is None and expert['label'] == 'expert'
