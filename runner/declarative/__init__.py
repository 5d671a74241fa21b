"""The declarative task kind: a user's own ONNX model and data, described by a task card alone.

Found through the registry as task kind `declarative` (entry point group `infersight.task_kinds`);
`runner.user_tasks.open_task` opens a card by path or by name from the user task folders.
"""

from runner.declarative.task import DeclarativeTask

__all__ = ["DeclarativeTask"]
