"""Model-assisted annotation: the model's predictions reviewed by people in Label Studio.

``omnipt-data review push`` sends a predictions store (boxes with ``source = "model:NAME"``, semantics rows
of the same source) to a Label Studio project as tasks with predictions; people accept, fix or delete what
the model said; ``review pull`` turns their annotations back into a store (``source = "review:EMAIL"``)
and ``review stats`` counts what was accepted, edited, rejected or added. The label configs live in the
project's ``annotate/`` folder. The modules import ``label_studio_sdk`` lazily (the ``annotate`` extra).
"""
