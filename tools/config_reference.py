"""
Render the configuration reference of README.md from the nodes' parameter tables.

`python tools/config_reference.py` rewrites the marked sections of README.md; the test
tests/test_config_reference.py fails when README, config/*.yaml and the tables disagree.
"""

import importlib
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# node name -> (module with the table, table name); config/<node>.yaml holds its values.
NODES = {
    'vla_server': ('vla_server.parameters', 'SERVER_PARAMETERS'),
    'vla_collector': ('vla_collector.parameters', 'COLLECTOR_PARAMETERS'),
    'vla_sim': ('vla_sim_bridge.parameters', 'SIM_PARAMETERS'),
}
# node name -> its YAML file in config/ (when not <node>.yaml)
CONFIG_FILES = {'vla_sim': 'sim.yaml'}


def parameter_table(node: str):
    """Return the ParameterSpec table of a node."""
    module, name = NODES[node]
    return getattr(importlib.import_module(module), name)


def config_path(node: str) -> pathlib.Path:
    """Return the parameter file of a node."""
    return ROOT / 'config' / CONFIG_FILES.get(node, f'{node}.yaml')


def render_yaml(node: str, header: str) -> str:
    """Return a node's parameter file: every parameter with its description as a comment."""
    lines = [f'# {line}' if line else '#' for line in header.splitlines()]
    lines += [f'{node}:', '  ros__parameters:']
    for spec in parameter_table(node):
        lines += [f'    # {spec.description}', f'    {spec.name}: {_yaml_value(spec.default)}']
    return '\n'.join(lines) + '\n'


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return '[' + ', '.join(_yaml_value(v) for v in value) + ']'
    if isinstance(value, str):
        return json.dumps(value) if (not value or value[0] in '{[' or ':' in value) else value
    return repr(value)


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
