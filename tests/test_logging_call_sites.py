"""
No node picks its logger method at run time.

rclpy binds one severity to each logging call site and raises ValueError when the same line
logs at another severity later (`log = info if ok else warning; log(msg)`); this killed the
recorder once. The check reads the sources of every node package.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ('vla_server/vla_server', 'vla_collector/vla_collector',
                                  'src/vla_sim_bridge') for p in (ROOT / folder).rglob('*.py'))
LEVELS = {'debug', 'info', 'warning', 'warn', 'error', 'fatal'}


def _logger_method(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in LEVELS and isinstance(
        node.value, ast.Call) and getattr(node.value.func, 'attr', '') == 'get_logger'


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_logger_method_is_chosen_at_run_time(path):
    offenders = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.IfExp) and (_logger_method(node.body)
                                                     or _logger_method(node.orelse))]
    assert offenders == [], f'{path}: logger method chosen at run time on lines {offenders}'
