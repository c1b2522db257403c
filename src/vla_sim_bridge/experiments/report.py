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
Turn vla-sim-evaluate result files into a markdown table, a bar plot and an image strip.

    vla-sim-report results/*.json --out docs/results/

Writes <out>/README.md (success rate per task family x split for every policy label -- model,
blind, expert, ... -- with episode counts, and the commands that produced each file),
<out>/success_rates.png (grouped bars, drawn with OpenCV), <out>/episodes_strip.png (camera
frames of a few evaluated episodes, one row each) and copies of the result files under
<out>/data/. --notes FILE puts a markdown file's text (e.g. the training details) above the
table.
"""

import argparse
import json
import pathlib
import shutil
import sys
from typing import Optional, Sequence

import numpy as np

LABEL_ORDER = ('model', 'blind', 'expert')
SPLIT_ORDER = ('train', 'novel')
FAMILY_ORDER = ('touch', 'pick_place')
# BGR colours of the bars, by position of the label (distinct for up to ten labels).
BAR_COLOURS = ((200, 120, 40), (60, 160, 240), (90, 170, 90), (160, 90, 160), (80, 80, 200),
               (70, 70, 70), (190, 190, 60), (180, 130, 230), (40, 100, 140), (160, 160, 160))
LEGEND_ENTRY_W = 150  # pixels per legend entry; entries wrap into rows
LEGEND_ROW_H = 22


def load_results(paths: Sequence[str]) -> list:
    """Read result files; each dict gets its path under '_path'."""
    runs = []
    for path in paths:
        data = json.loads(pathlib.Path(path).read_text())
        data['_path'] = str(path)
        runs.append(data)
    return runs


def _ordered(values, order) -> list:
    return [v for v in order if v in values] + sorted(v for v in values if v not in order)


def success_table(runs: list) -> dict:
    """Return {(family, split): {label: [successes, episodes]}} over every episode."""
    table = {}
    for run in runs:
        for episode in run['episodes']:
            key = (episode['family'], episode.get('split', run['split']))
            cell = table.setdefault(key, {}).setdefault(run['label'], [0, 0])
            cell[0] += int(bool(episode['success']))
            cell[1] += 1
    return table


def labels_of(runs: list) -> list:
    """Return the policy labels in report order."""
    return _ordered({run['label'] for run in runs}, LABEL_ORDER)


def row_keys(table: dict) -> list:
    """Return the (family, split) rows in report order."""
    families = _ordered({f for f, _ in table}, FAMILY_ORDER)
    splits = _ordered({s for _, s in table}, SPLIT_ORDER)
    return [(f, s) for f in families for s in splits if (f, s) in table]


def format_cell(cell) -> str:
    """Format [successes, episodes] as '7/20 (35%)', or '-' when there is none."""
    if not cell or not cell[1]:
        return '-'
    return f'{cell[0]}/{cell[1]} ({100.0 * cell[0] / cell[1]:.0f}%)'


def markdown_table(runs: list) -> str:
    """Return the success-rate table as markdown."""
    table = success_table(runs)
    labels = labels_of(runs)
    lines = ['| task | split | ' + ' | '.join(labels) + ' |',
             '|---|---|' + '---|' * len(labels)]
    for family, split in row_keys(table):
        cells = [format_cell(table[(family, split)].get(label)) for label in labels]
        lines.append(f'| {family} | {split} | ' + ' | '.join(cells) + ' |')
    for split in _ordered({s for _, s in table}, SPLIT_ORDER):
        totals = []
        for label in labels:
            cells = [table[k][label] for k in table if k[1] == split and label in table[k]]
            totals.append(format_cell([sum(c[0] for c in cells), sum(c[1] for c in cells)]))
        lines.append(f'| **all** | {split} | ' + ' | '.join(totals) + ' |')
    return '\n'.join(lines)


def legend_layout(count: int, width: int, left: int = 60,
                  entry_w: int = LEGEND_ENTRY_W) -> list[tuple[int, int]]:
    """Return (x, row) of each legend entry: as many per row as fit, then the next row."""
    per_row = max(1, (width - left) // entry_w)
    return [(left + 10 + (i % per_row) * entry_w, i // per_row) for i in range(count)]


def legend_entry_width(labels: Sequence[str]) -> int:
    """Pixels per legend entry: LEGEND_ENTRY_W, or more when a label would run into the next."""
    import cv2
    widest = max((cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
                  for label in labels), default=0)
    return max(LEGEND_ENTRY_W, 24 + widest + 12)  # swatch, label, gap


def bar_plot(runs: list, width: int = 960, height: int = 480) -> np.ndarray:
    """Draw grouped bars of the success rates (one group per task x split); return BGR."""
    import cv2
    table = success_table(runs)
    labels = labels_of(runs)
    rows = row_keys(table)
    legend = legend_layout(len(labels), width, entry_w=legend_entry_width(labels))
    legend_rows = 1 + max((row for _, row in legend), default=0)
    height += (legend_rows - 1) * LEGEND_ROW_H  # the plot keeps its size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, 20, 50, 48 + legend_rows * LEGEND_ROW_H
    plot_w, plot_h = width - left - right, height - top - bottom
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, 'closed-loop success rate (simulation)', (left, 30), font, 0.7,
                (0, 0, 0), 2, cv2.LINE_AA)
    for tick in range(0, 101, 20):
        y = top + plot_h - int(plot_h * tick / 100)
        cv2.line(image, (left, y), (left + plot_w, y), (220, 220, 220), 1)
        cv2.putText(image, f'{tick}%', (8, y + 5), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.line(image, (left, top), (left, top + plot_h), (0, 0, 0), 1)
    cv2.line(image, (left, top + plot_h), (left + plot_w, top + plot_h), (0, 0, 0), 1)
    group_w = plot_w / max(1, len(rows))
    bar_w = group_w * 0.8 / max(1, len(labels))
    number_scale = max(0.3, min(0.4, bar_w / 50))  # narrow bars, smaller numbers
    for g, key in enumerate(rows):
        x0 = left + g * group_w + group_w * 0.1
        for b, label in enumerate(labels):
            cell = table[key].get(label)
            if not cell or not cell[1]:
                continue
            rate = cell[0] / cell[1]
            x1, x2 = int(x0 + b * bar_w), int(x0 + (b + 1) * bar_w) - 2
            y1 = top + plot_h - int(plot_h * rate)
            colour = BAR_COLOURS[b % len(BAR_COLOURS)]
            cv2.rectangle(image, (x1, y1), (x2, top + plot_h), colour, -1)
            cv2.putText(image, f'{100 * rate:.0f}', (x1 + 1, max(top + 12, y1 - 4)), font,
                        number_scale, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, f'{key[0]} / {key[1]}', (int(x0), top + plot_h + 22), font, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    for b, (label, (x, row)) in enumerate(zip(labels, legend)):
        y = top + plot_h + 40 + row * LEGEND_ROW_H
        cv2.rectangle(image, (x, y), (x + 18, y + 16), BAR_COLOURS[b % len(BAR_COLOURS)], -1)
        cv2.putText(image, label, (x + 24, y + 14), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def image_strip(runs: list, episodes: int = 4, frame_size: int = 160) -> Optional[np.ndarray]:
    """Stack saved frames of a few episodes (one row each, captioned); None when none saved."""
    import cv2
    chosen = []
    for run in sorted(runs, key=lambda r: (r['label'] != 'model', r['mode'] == 'expert')):
        frames_dir = pathlib.Path(run['_path']).parent / run.get('frames_dir', '')
        for episode in run['episodes']:
            paths = [frames_dir / f for f in episode.get('frames', [])]
            paths = [p for p in paths if p.exists()]
            if paths and len(chosen) < episodes:
                chosen.append((run, episode, paths))
    if not chosen:
        return None
    columns = max(len(paths) for _, _, paths in chosen)
    caption_h = 24
    rows = []
    for run, episode, paths in chosen:
        tiles = [cv2.resize(cv2.imread(str(p)), (frame_size, frame_size)) for p in paths]
        tiles += [np.full((frame_size, frame_size, 3), 255, np.uint8)] * (columns - len(tiles))
        row = np.concatenate(tiles, axis=1)
        caption = np.full((caption_h, row.shape[1], 3), 255, np.uint8)
        verdict = 'success' if episode['success'] else 'failure'
        text = (f'{run["label"]} / {episode.get("split", run["split"])}: '
                f'"{episode["instruction"]}" - {verdict} ({episode["steps"]} steps)')
        cv2.putText(caption, text[:110], (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([caption, row], axis=0))
    return np.concatenate(rows, axis=0)


def write_report(runs: list, out: pathlib.Path, notes: Optional[str] = None,
                 strip_episodes: int = 4) -> pathlib.Path:
    """Write README.md, the PNGs and copies of the result files under ``out``."""
    import cv2
    out.mkdir(parents=True, exist_ok=True)
    (out / 'data').mkdir(exist_ok=True)
    cv2.imwrite(str(out / 'success_rates.png'), bar_plot(runs))
    strip = image_strip(runs, strip_episodes)
    if strip is not None:
        cv2.imwrite(str(out / 'episodes_strip.png'), strip)
    # Notes that open with a title keep it (notes are often the head of the last README).
    lines = [] if notes and notes.startswith('# ') else ['# Closed-loop results in simulation', '']
    if notes:
        lines += [notes.rstrip(), '']
    lines += ['## Success rate per task and split', '',
              "Cells: successes / episodes (rate). Success is the simulator's check "
              '(`/vla_sim/task_success`), polled by the server every control tick.', '',
              markdown_table(runs), '', '![success rates](success_rates.png)', '']
    if strip is not None:
        lines += ['## Episodes', '',
                  'Head-camera frames (start, one third, two thirds, end) of a few episodes.',
                  '', '![episodes](episodes_strip.png)', '']
    lines += ['## Result files and commands', '']
    for run in runs:
        name = pathlib.Path(run['_path']).name
        shutil.copyfile(run['_path'], out / 'data' / name)
        lines.append(f'- `data/{name}` ({run["label"]}, {run["split"]}, '
                     f'{len(run["episodes"])} episodes, {run.get("wall_seconds", "?")} s): '
                     f'`{run["command"]}`')
    path = out / 'README.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-sim-report."""
    parser = argparse.ArgumentParser(prog='vla-sim-report', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', nargs='+', help='result files of vla-sim-evaluate')
    parser.add_argument('--out', default='docs/results', help='output directory')
    parser.add_argument('--notes', default=None, help='markdown file put above the table')
    parser.add_argument('--strip-episodes', type=int, default=4,
                        help='episodes in the image strip')
    args = parser.parse_args(argv)
    runs = load_results(args.results)
    notes = pathlib.Path(args.notes).read_text() if args.notes else None
    path = write_report(runs, pathlib.Path(args.out), notes, args.strip_episodes)
    print(markdown_table(runs))
    print(f'report: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
