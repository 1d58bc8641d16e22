"""The grader's own check of exercise 6 (never in a student copy): its reruns of the four runs
from the submitted code, the submitted runs against them, the reruns against the ranges of correct
code, and each answer against the student's own intervals (judge.py says how)."""

import pytest

from extensions.exercises import readings as R
from extensions.exercises.autograder import judge


def test_the_grader_reran_your_runs():
    judge.reran_all(6)


def test_your_runs_agree_with_the_graders_reruns():
    judge.agree(6)


def test_the_reruns_land_where_correct_code_lands():
    judge.in_ranges(6)


def expected(question):
    """The answer the student's runs give by the README's rule: an effect is there when its 95%
    interval lies above 0."""
    found = {name: R.run(6, name)[1] for name in ('plain', 'memorize', 'reg', 'grl')}

    def lit(run, key):
        return R.above(found[run][f'{key}_ci']) == 'above'

    if question == 'q1':
        return 'memorization' if lit('plain', 'memorization') else 'capacity'
    if question == 'q2':
        both = {(True, True): 'both', (True, False): 'm', (False, True): 'specific'}
        return both.get((lit('memorize', 'memorization'), lit('memorize', 'specific')), 'neither')
    return 'hidden' if lit({'q3': 'reg', 'q4': 'grl'}[question], 'specific') else 'removed'


@pytest.mark.parametrize('question', ['q1', 'q2', 'q3', 'q4'])
def test_your_answer(question):
    choices = {'q1': ('memorization', 'capacity'), 'q2': ('m', 'specific', 'both', 'neither')}
    choices = choices.get(question, ('hidden', 'removed'))
    judge.answer(R.readings(6), question, choices, expected(question))
