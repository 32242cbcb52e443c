"""Job logic, testable without Celery: the tasks in ``worker.tasks`` only call into here."""
