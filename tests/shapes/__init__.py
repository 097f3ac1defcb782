"""Three project shapes and the whole loop around them, as the workflows ``mlci init`` writes
would run it: ``projects`` builds each shape's repository, ``walk`` runs its jobs (PR check,
push to main, monitor, rollback) against a shared ``mlflow server``, a local DVC remote and the
loopback GitHub. Shared by ``tests/test_lifecycle*.py`` and ``bench/lifecycle.py``.
"""
