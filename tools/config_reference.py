"""
Render the configuration reference of README.md from the nodes' parameter tables.

`python tools/config_reference.py` rewrites the marked sections of README.md; the test
tests/test_config_reference.py fails when README, config/*.yaml and the tables disagree.
"""

import importlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# node name -> (module with the table, table name); config/<node>.yaml holds its values.
NODES = {
    'vla_server': ('vla_server.parameters', 'SERVER_PARAMETERS'),
    'vla_collector': ('vla_collector.parameters', 'COLLECTOR_PARAMETERS'),
}


def parameter_table(node: str):
    """Return the ParameterSpec table of a node."""
    module, name = NODES[node]
    return getattr(importlib.import_module(module), name)


def render(node: str) -> str:
    """Return the markdown table of a node's parameters."""
    rows = ['| parameter | default | meaning |', '| --- | --- | --- |']
    for spec in parameter_table(node):
        default = spec.default if spec.default != '' else '""'
        rows.append(f'| `{spec.name}` | `{default}` | {spec.description} |')
    return '\n'.join(rows)


def section_pattern(node: str) -> re.Pattern:
    """Return the regex of README's generated section for a node."""
    return re.compile(rf'(<!-- config-reference:{node}:start -->\n)(.*?)(\n<!-- config-reference:'
                      rf'{node}:end -->)', re.S)


def main() -> int:
    """Rewrite README.md's generated sections."""
    readme = ROOT / 'README.md'
    text = readme.read_text()
    for node in NODES:
        text, count = section_pattern(node).subn(lambda m: m.group(1) + render(node) + m.group(3),
                                                 text)
        if count != 1:
            print(f'README.md has no section marked for {node}', file=sys.stderr)
            return 1
    readme.write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
