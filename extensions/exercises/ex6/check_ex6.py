"""Check of exercise 6, a measurement: your four runs (plain, --memorize, reg, grl with the DANN
ramp) and your readings of them (readings.py says what it asks; doing nothing fails)."""

import math

from extensions.exercises import readings as R

RUNS = ('plain', 'memorize', 'reg', 'grl')
ASKED = ['plain online', 'plain a_train', 'plain a_fresh', 'plain a_heldout', 'plain a_init']
ASKED += ['plain m interval', 'memorize a_train', 'memorize a_fresh', 'memorize m interval']
ASKED += ['memorize a_train - a_fresh interval', 'reg online', 'reg a_train - a_fresh interval']
ASKED += ['grl lam after epoch 1', 'grl lam after epoch 10', 'grl online']
ASKED += ['grl a_train - a_fresh interval']
CHOICES = {'q1': ('memorization', 'capacity'), 'q2': ('m', 'specific', 'both', 'neither')}
CHOICES |= {'q3': ('hidden', 'removed'), 'q4': ('hidden', 'removed')}


def runs():
    return {name: R.run(6, name) for name in RUNS}


def test_the_runs_move_as_their_options_say():
    """The premises of the questions, in your runs: --memorize lifts the online head above the
    plain run's, reg and grl push it below (each so in all 10 seeds of the reference code)."""
    online = {name: tap['online'] for name, (_, tap) in runs().items()}
    assert online['memorize'] > online['plain'], f'--memorize did not lift the online head {online}'
    for name in ('reg', 'grl'):
        assert online[name] < online['plain'], f'{name} did not push the online head down {online}'


def test_results_json_holds_the_numbers_your_functions_make():
    """Recomputed here from results.json: the complexity of every tap and epoch and its interval
    (exercise 2), and the λ of every epoch of the DANN ramp (exercise 4)."""
    z = 1.96
    for name, (results, _) in runs().items():
        K, n, final = (
            results['config']['random_labels'],
            results['data']['n_train'],
            results['final'],
        )
        for when, record in [*enumerate(results['history'], 1), ('final', final)]:
            for tap, a in record['rand_acc'].items():
                c = (a - 1 / K) / (1 - 1 / K)
                assert math.isclose(record['complexity'][tap], c, abs_tol=1e-9), (
                    f'{name}, epoch {when}: complexity {record["complexity"][tap]} of a = {a}'
                )
        for tap, a in final['rand_acc'].items():
            center = (a + z * z / (2 * n)) / (1 + z * z / n)
            half = z * math.sqrt(a * (1 - a) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            lo, hi = final['rand_acc_ci'][tap]
            assert abs(lo - center + half) < 1e-9 and abs(hi - center - half) < 1e-9, (
                f'{name}: interval [{lo}, {hi}] of a = {a}, n = {n}'
            )
    results = runs()['grl'][0]
    cfg, steps = (
        results['config'],
        math.ceil(results['data']['n_train'] / results['config']['batch_size']),
    )
    for e, h in enumerate(results['history'], 1):
        p = (e * steps - 1) / (cfg['epochs'] * steps)  # λ of the epoch's last step
        ramp = cfg['lam'] * (2 / (1 + math.exp(-10 * p)) - 1)
        assert math.isclose(h['lam'], ramp, rel_tol=1e-6), f'grl: λ after epoch {e} = {h["lam"]}'


def test_your_readings_are_your_runs_numbers():
    R.compare(R.readings(6), ASKED, runs())


def test_every_answer_is_a_choice_with_a_line_why():
    """Each answer is one of its choices and has a line why. Whether it is the right one is for
    the grader (and your teacher) to say: decide it from your intervals by the README's rule."""
    given = R.readings(6)
    for q, choices in CHOICES.items():
        R.choice_with_why(given, q, choices)
