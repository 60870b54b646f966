"""Background work for the app (guide: "Celery Tasks"): the tasks and how the API enqueues them.

`tasks` holds the task code (run by `python -m reference_app worker`); `enqueue` is what an
endpoint calls to send one after its transaction commits.
"""
