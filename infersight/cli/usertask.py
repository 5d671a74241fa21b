"""`infersight task new`: bring your own ONNX model and data as a task that runs at once."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from infersight.cli._common import out

__all__ = ["COMMANDS"]


@click.group("task")
def task_group() -> None:
    """Your own tasks: scaffold a task from an ONNX model and its data.

    \b
    Example:
        infersight task new mymodel --model model.onnx --data samples.npz
        infersight run infersight-tasks/mymodel/task.yaml --scenario offline --quick
    """


@task_group.command("new")
@click.argument("name")
@click.option("--model", type=click.Path(path_type=Path), required=True, help="The ONNX model file (copied and "
              "pinned by sha256).")
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="The samples: .npz (a key per model input), .npy, .csv or .parquet (columns), or a folder of images "
                   "(copied).")
@click.option("--labels", default=None, metavar="COLUMN_OR_FILE",
              help="References: a key or column of the data, a file (.npy, .csv, .parquet, .txt), or 'subfolders' "
                   "(default: a key/column named label, labels, y, target or class).")
@click.option("--metric", default=None, help="scikit-learn metric: accuracy, balanced_accuracy, top_k_accuracy, f1, "
              "precision, recall, mse, mae, r2 (default: accuracy for class ids, else mse).")
@click.option("--metric-option", "metric_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the metric, repeatable: k=2 (top_k_accuracy), average=micro (f1, precision, recall).")
@click.option("--target", default=None, metavar="VALUE|PCT%",
              help="Quality target: 0.95 is absolute, 99% is a fraction of the fp32 model's own quality "
                   "(default: 99%, or 101% for a lower-is-better metric).")
@click.option("--int8", is_flag=True, help="Also make an int8 variant (onnxruntime quantize_static, calibrated on "
              "the data).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Task folder (default: ./infersight-tasks/NAME, or the first folder of $INFERSIGHT_TASKS).")
def new_cmd(name: str, model: Path, data: Path, labels: str | None, metric: str | None,
            metric_options: tuple[str, ...], target: str | None, int8: bool, out_dir: Path | None) -> None:
    """Scaffold task NAME from an ONNX model and its data: a folder with a documented task.yaml that runs at once.

    \b
    Example:
        infersight task new iris --model iris.onnx --data iris.csv --labels species --metric f1 --target 0.9
        infersight run infersight-tasks/iris/task.yaml --scenario single_stream --quick
    """
    from runner.declarative.scaffold import NewTaskRequest, new_task, shown  # onnx loads only when used

    request = NewTaskRequest(name=name, model=model, data=data, labels=labels, metric=metric, target=target,
                             metric_options=_options(metric_options), out=out_dir, int8=int8)
    card = shown(new_task(request))
    out.print(f"task {name}: {card} (model card, pinned sha256 and reference quality written)")
    out.print(f"  run it: infersight run {card} --scenario single_stream")


def _options(items: tuple[str, ...]) -> dict[str, int | float | str]:
    options = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--metric-option")
        value = yaml.safe_load(raw)
        options[key.strip()] = value if isinstance(value, (int, float)) else str(raw)
    return options


COMMANDS = [task_group]
