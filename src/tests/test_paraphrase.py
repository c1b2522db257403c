"""Instruction paraphrases: matching, rewriting, table checks, and the simulation's table."""

from pathlib import Path

from humanoid_vla.paraphrase import ParaphraseTable, ParaphraseTableError, template_words
from humanoid_vla.sim.catalog import words
from humanoid_vla.sim.tasks import (
    NEXT_TO_PHRASINGS,
    ON_PLATE_PHRASINGS,
    sample_task,
    TOUCH_PHRASINGS,
)
import numpy as np
import pytest

SIM_TABLE = Path(__file__).resolve().parents[2] / 'config' / 'instruction_paraphrases_sim.yaml'
GROUPS = {
    'touch': ['touch the {target}', 'poke the {target}', 'reach for the {target} and touch it'],
    'next_to': ['put the {target} next to the {reference}',
                'place the {target} near the {reference}'],
}


def test_an_instruction_is_rewritten_with_its_own_objects():
    table = ParaphraseTable(GROUPS, probability=1.0)
    assert table.match('put the red cup next to the blue bowl') == (
        'next_to', {'target': 'red cup', 'reference': 'blue bowl'})
    assert table.variants('put the red cup next to the blue bowl') == [
        'put the red cup next to the blue bowl', 'place the red cup near the blue bowl']
    rewritten = table.rewrite(['poke the green block'] * 50, np.random.default_rng(0))
    assert set(rewritten) == {'touch the green block', 'reach for the green block and touch it'}


def test_probability_decides_how_often_and_unknown_instructions_stay():
    rng = np.random.default_rng(1)
    never = ParaphraseTable(GROUPS, probability=0.0)
    assert never.rewrite(['touch the red cup'] * 20, rng) == ['touch the red cup'] * 20
    half = ParaphraseTable(GROUPS, probability=0.5)
    kept = half.rewrite(['touch the red cup'] * 400, rng).count('touch the red cup')
    assert 150 < kept < 250
    assert half.rewrite(['wave at the camera'], rng) == ['wave at the camera']
    assert half.all_variants(['touch the red cup', 'wave']) == {
        'touch the red cup', 'poke the red cup', 'reach for the red cup and touch it', 'wave'}


@pytest.mark.parametrize('data, message', [
    ({'groups': GROUPS, 'probability': 1.5}, 'probability'),
    ({'groups': GROUPS, 'probability': True}, 'probability'),
    ({'groups': {}}, 'at least one group'),
    ({'groups': {'touch': ['touch the {target}']}}, 'at least two'),
    ({'groups': {'touch': 'touch the {target}'}}, 'at least two'),
    ({'groups': {'x': ['touch the {target}', 'touch it']}}, 'same slots'),
    ({'groups': {'x': ['a {target} {target}', 'b {target}']}}, 'repeats a slot'),
    ({'groups': {'x': ['a {target}', 'a {target}']}}, 'twice'),
    ({'groups': GROUPS, 'weights': [1]}, 'unknown key'),
    ({'probability': 0.5}, 'groups must map'),
])
def test_bad_tables_are_refused_with_the_reason(data, message):
    with pytest.raises(ParaphraseTableError, match=message):
        ParaphraseTable.from_mapping(data)


def test_sim_table_covers_every_training_phrasing_in_its_own_group():
    table = ParaphraseTable.from_yaml(SIM_TABLE)
    for seed in range(300):
        task = sample_task(seed, split='train')
        expected = {None: 'touch', 'next_to': 'next_to', 'on': 'on_plate'}[task.relation]
        name, values = table.match(task.instruction)
        assert name == expected, task.instruction
        assert values['target'] == words(task.target)
        if task.relation == 'next_to':
            assert values['reference'] == words(task.reference)
        assert len(table.variants(task.instruction)) >= 10


def test_sim_table_keeps_the_novel_phrasings_held_out():
    """No paraphrase uses a word that only the novel split's phrasings use (tap, beside, ...)."""
    table = ParaphraseTable.from_yaml(SIM_TABLE)
    phrasings = (TOUCH_PHRASINGS, NEXT_TO_PHRASINGS, ON_PLATE_PHRASINGS)
    train_words = set().union(*(template_words(t) for p in phrasings for t in p['train']))
    novel_words = set().union(*(template_words(t) for p in phrasings for t in p['novel']))
    novel_only = novel_words - train_words
    assert {'tap', 'beside', 'grab', 'onto'} <= novel_only
    assert not table.words() & novel_only
    for seed in range(200):
        task = sample_task(seed, split='novel')
        assert table.match(task.instruction) is None, task.instruction
