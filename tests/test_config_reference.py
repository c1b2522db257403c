"""config/*.yaml, the nodes' parameter tables and README's reference say the same thing."""

import importlib.util
import pathlib

import pytest
import yaml

pytest.importorskip('rclpy')
ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('config_reference', ROOT / 'tools' /
                                              'config_reference.py')
config_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(config_reference)


@pytest.mark.parametrize('node', sorted(config_reference.NODES))
def test_yaml_declares_every_parameter_with_its_default_and_description(node):
    path = config_reference.config_path(node)
    values = yaml.safe_load(path.read_text())[node]['ros__parameters']
    table = config_reference.parameter_table(node)
    assert list(values) == [p.name for p in table], f'{path} and the table list different names'
    for parameter in table:
        assert values[parameter.name] == parameter.default, parameter.name
    lines = path.read_text().splitlines()
    for parameter in table:
        index = next(i for i, line in enumerate(lines)
                     if line.strip().startswith(f'{parameter.name}:'))
        assert lines[index - 1].strip() == f'# {parameter.description}', parameter.name


@pytest.mark.parametrize('node', sorted(config_reference.NODES))
def test_readme_reference_matches_the_table(node):
    match = config_reference.section_pattern(node).search((ROOT / 'README.md').read_text())
    assert match, f'README.md lacks the generated section for {node}'
    assert match.group(2) == config_reference.render(node), (
        'README is stale: run python tools/config_reference.py')
