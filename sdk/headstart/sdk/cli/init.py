"""`headstart init NAME`: write a FineTuneJob manifest from a few flags, valid by construction.

The classic recipe as flags: a head trained on the frozen base at a high learning rate, then the base (all,
its top N layers, or from a layer on) fine-tuned at a low one, each stage with its optimizer, learning rate
and momentum. The manifest is built as data, checked with the API models (the same checks as `headstart
validate`), and only then written: a bad value is a usage error naming the flag, and nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from headstart.sdk import exit_codes

from .options import check_output, given_before, output_option

#: A field of the manifest -> the flag that sets it (errors name the flag, not the field).
FLAG_OF_FIELD = {
    "metadata.name": "NAME", "metadata.namespace": "--namespace", "spec.baseModel.application": "--application",
    "spec.baseModel.uri": "--base", "spec.baseModel.fromJob": "--from-job", "spec.dataset.tfds.name": "--dataset",
    "spec.dataset.imageFolder.uri": "--dataset", "spec.output.uri": "--output-uri", "spec.resources.gpus": "--gpus",
    "spec.dataset.batchSize": "--batch-size", "spec.stages[1].trainBase": "--finetune-train-base",
    **{f"spec.stages[{index}].{field}": f"--{stage}-{flag}"
       for index, stage in enumerate(("head", "finetune"))
       for field, flag in (("epochs", "epochs"), ("optimizer.type", "optimizer"),
                           ("optimizer.learningRate", "learning-rate"), ("optimizer.momentum", "momentum"))},
}


def _optimizer(kind: str, learning_rate: float, momentum: float | None) -> dict:
    optimizer: dict = {"type": kind, "learningRate": learning_rate}
    if momentum is not None:
        optimizer["momentum"] = momentum
    return optimizer


def manifest(name: str, *, application: str | None = None, base: str | None = None, from_job: str | None = None,
             dataset: str, output_uri: str, gpus: int = 1, batch_size: int = 32, namespace: str | None = None,
             head: tuple[int, str, float, float | None] = (5, "Adam", 0.001, None),
             finetune: tuple[int, str, float, float | None, str] = (10, "Adam", 0.00001, None, "all")) -> dict:
    """The manifest as data. ``head`` is (epochs, optimizer, learning rate, momentum) of the frozen stage,
    ``finetune`` the same and what of the base trains (epochs 0: no fine-tuning stage)."""
    if sum(x is not None for x in (application, base, from_job)) > 1:
        raise typer.BadParameter("give one of --application, --base or --from-job")
    if base is not None:
        base_model: dict = {"uri": base}
    elif from_job is not None:
        base_model = {"fromJob": from_job}
    else:
        base_model = {"application": application or "Xception", "weights": "imagenet"}
    if dataset.startswith("tfds:"):
        source: dict = {"tfds": {"name": dataset.removeprefix("tfds:")}}
        splits: dict = {"train": "train[:80%]", "validation": "train[80%:90%]", "test": "train[90%:]"}
    else:
        source = {"imageFolder": {"uri": dataset}}
        splits = {"validation": 0.1, "test": 0.1}
    metadata: dict = {"name": name, **({"namespace": namespace} if namespace else {})}
    stages = [{"name": "head", "trainBase": "none", "epochs": head[0], "optimizer": _optimizer(*head[1:])}]
    if finetune[0] != 0:
        stages.append({"name": "finetune", "trainBase": finetune[4], "epochs": finetune[0],
                       "optimizer": _optimizer(*finetune[1:4]),
                       "earlyStopping": {"monitor": "val_loss", "patience": 3}})
    return {
        "apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": metadata,
        "spec": {
            "baseModel": base_model,
            "head": {"pooling": "avg", "dropout": 0.2},
            "dataset": {**source, "splits": splits, "batchSize": batch_size},
            "stages": stages,
            "output": {"uri": output_uri},
            "resources": {"gpus": gpus},
        },
    }


def flag_line(path: str, message: str) -> str:
    """A problem of the manifest said as one of the flag that set it: `--head-epochs must be greater than 0`."""
    flag = FLAG_OF_FIELD.get(path, path)
    return f"{flag} {message}" if message.startswith("must ") else f"{flag}: {message}"


def _render(doc: dict, output: str) -> str:
    if output == "json":
        return json.dumps(doc, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def _write(file: Path, text: str, force: bool) -> None:
    if file.exists() and not force:
        typer.echo(f"headstart init: {file} exists (--force replaces it)", err=True)
        raise typer.Exit(exit_codes.USAGE)
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(file)
    typer.echo(f"wrote {file}", err=True)


def init(
    name: str = typer.Argument(..., metavar="NAME", help="The job's name (lower-case letters, digits, '-')."),
    dataset: str = typer.Option(..., "--dataset", "-d", metavar="SOURCE",
                                help="tfds:NAME (e.g. tfds:tf_flowers) or an image folder's path or URI."),
    output_uri: str = typer.Option(..., "--output-uri", metavar="URI",
                                   help="Where the model goes: pvc://CLAIM/path, s3://, gs://, or a path."),
    application: str | None = typer.Option(None, "--application", "-a", metavar="NAME",
                                           help="A keras.applications base, e.g. Xception (the default)."),
    base: str | None = typer.Option(None, "--base", metavar="URI",
                                    help="Your own base model by URI (.keras or SavedModel)."),
    from_job: str | None = typer.Option(None, "--from-job", metavar="NAME", help="Start from another job's model."),
    head_epochs: int = typer.Option(5, "--head-epochs", metavar="N", help="Epochs on the frozen base."),
    head_optimizer: str = typer.Option("Adam", "--head-optimizer", metavar="TYPE",
                                       help="SGD, Adam, AdamW or RMSprop, for the head."),
    head_learning_rate: float = typer.Option(0.001, "--head-learning-rate", metavar="RATE",
                                             help="The head's learning rate (high: a new head)."),
    head_momentum: float | None = typer.Option(None, "--head-momentum", metavar="M", help="SGD, RMSprop only."),
    finetune_epochs: int = typer.Option(10, "--finetune-epochs", metavar="N", help="Epochs of fine-tuning (0: none)."),
    finetune_optimizer: str = typer.Option("Adam", "--finetune-optimizer", metavar="TYPE",
                                           help="SGD, Adam, AdamW or RMSprop, for fine-tuning."),
    finetune_learning_rate: float = typer.Option(0.00001, "--finetune-learning-rate", metavar="RATE",
                                                 help="Fine-tuning's learning rate (low: keep what the base knows)."),
    finetune_momentum: float | None = typer.Option(None, "--finetune-momentum", metavar="M",
                                                   help="SGD, RMSprop only."),
    finetune_train_base: str = typer.Option("all", "--finetune-train-base", metavar="WHAT",
                                            help="What of the base fine-tunes: all, top:N or from:LAYER."),
    gpus: int = typer.Option(1, "--gpus", metavar="N", help="GPUs of the training pod."),
    batch_size: int = typer.Option(32, "--batch-size", metavar="N", help="Images per batch."),
    namespace: str | None = typer.Option(None, "--namespace", "-n", metavar="NAME", help="metadata.namespace."),
    output: str = output_option("yaml", ("yaml", "json")),
    file: Path | None = typer.Option(None, "--file", "-f", metavar="FILE", help="Write here, not to stdout."),
    force: bool = typer.Option(False, "--force", help="Replace FILE if it exists."),
    *, ctx: typer.Context,
) -> None:
    """Write a FineTuneJob manifest from flags.

    The recipe's two stages (frozen head, then fine-tuning); the result passes `headstart validate`."""
    from headstart.api import check_document

    check_output(output, "init", ("yaml", "json"))
    doc = manifest(name, application=application, base=base, from_job=from_job, dataset=dataset,
                   output_uri=output_uri, gpus=gpus, batch_size=batch_size,
                   namespace=namespace or given_before(ctx).namespace,
                   head=(head_epochs, head_optimizer, head_learning_rate, head_momentum),
                   finetune=(finetune_epochs, finetune_optimizer, finetune_learning_rate, finetune_momentum,
                             finetune_train_base))
    job, problems = check_document(doc, target="local")  # a local output is fine for `headstart run`
    errors = [p for p in problems if p.severity == "error"]
    for problem in errors or problems:
        mark = "" if problem.severity == "error" else "warning: "
        typer.echo(f"headstart init: {mark}{flag_line(problem.path, problem.message)}", err=True)
    if job is None or errors:
        raise typer.Exit(exit_codes.USAGE)
    text = _render(doc, output)
    if file is None:
        typer.echo(text, nl=False)
    else:
        _write(file, text, force)
