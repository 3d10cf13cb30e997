"""An outside set of plausible student answers for the graded tasks of chapters 00–03.

Written from the exercise notebooks' task text and the library's public docs only, without
reading ``recon_lib/grading``: each ``chNN.ANSWERS`` maps a task id to ``(label, function,
is_correct)`` triples, at least two differently written correct answers and at least four
plausible wrong ones per task. ``tests/test_student_answers.py`` grades them.
"""
