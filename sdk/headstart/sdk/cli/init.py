"""`headstart init NAME`: write a FineTuneJob manifest from a few flags, valid by construction.

The manifest is built as data, checked with the API models (the same checks as `headstart validate`), and
only then written: a bad flag value is a usage error naming the flag, and nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

FLAG_OF_FIELD = {
    "metadata.name": "NAME", "spec.baseModel.application": "--application", "spec.baseModel.uri": "--base",
    "spec.baseModel.fromJob": "--from-job", "spec.dataset.tfds.name": "--dataset",
    "spec.dataset.imageFolder.uri": "--dataset", "spec.output.uri": "--output", "spec.resources.gpus": "--gpus",
    "spec.dataset.batchSize": "--batch-size",
}


def manifest(name: str, *, application: str | None, base: str | None, from_job: str | None, dataset: str,
             output: str, gpus: int, head_epochs: int, finetune_epochs: int, batch_size: int,
             namespace: str | None) -> dict:
    """The manifest as data: the recipe's two stages (frozen head at a high rate, then fine-tuning low)."""
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
    metadata: dict = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    stages = [
        {"name": "head", "trainBase": "none", "epochs": head_epochs,
         "optimizer": {"type": "Adam", "learningRate": 0.001}},
    ]
    if finetune_epochs > 0:
        stages.append({"name": "finetune", "trainBase": "all", "epochs": finetune_epochs,
                       "optimizer": {"type": "Adam", "learningRate": 0.00001},
                       "earlyStopping": {"monitor": "val_loss", "patience": 3}})
    return {
        "apiVersion": "headstart.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": metadata,
        "spec": {
            "baseModel": base_model,
            "head": {"pooling": "avg", "dropout": 0.2},
            "dataset": {**source, "splits": splits, "batchSize": batch_size},
            "stages": stages,
            "output": {"uri": output},
            "resources": {"gpus": gpus},
        },
    }


def init(
    name: str = typer.Argument(..., metavar="NAME", help="The job's name (lower-case letters, digits, '-')."),
    application: str | None = typer.Option(None, "--application", "-a",
                                           help="A keras.applications base, e.g. Xception (the default)."),
    base: str | None = typer.Option(None, "--base", help="Your own base model by URI (.keras or SavedModel)."),
    from_job: str | None = typer.Option(None, "--from-job", help="Start from another job's model."),
    dataset: str = typer.Option(..., "--dataset", "-d",
                                help="tfds:NAME (e.g. tfds:tf_flowers) or an image folder's path or URI."),
    output: str = typer.Option(..., "--output", "-o", help="Where the model goes: pvc://, s3://, gs://, path."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs of the training pod."),
    head_epochs: int = typer.Option(5, "--head-epochs", help="Epochs on the frozen base."),
    finetune_epochs: int = typer.Option(10, "--finetune-epochs", help="Epochs of fine-tuning (0: none)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per batch."),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="metadata.namespace, if any."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Write here instead of standard output."),
    force: bool = typer.Option(False, "--force", help="Replace FILE if it exists."),
) -> None:
    """Write a FineTuneJob manifest from flags.

    The recipe's two stages (frozen head, then fine-tuning); the result passes `headstart validate`."""
    import yaml

    from headstart.api import check_document

    doc = manifest(name, application=application, base=base, from_job=from_job, dataset=dataset, output=output,
                   gpus=gpus, head_epochs=head_epochs, finetune_epochs=finetune_epochs, batch_size=batch_size,
                   namespace=namespace)
    job, problems = check_document(doc)
    errors = [p for p in problems if p.severity == "error"]
    if job is None or errors:
        for problem in errors:
            flag = FLAG_OF_FIELD.get(problem.path)
            where = f"{flag} ({problem.path})" if flag else problem.path
            typer.echo(f"headstart init: {where}: {problem.message}", err=True)
        raise typer.Exit(2)
    text = yaml.safe_dump(doc, sort_keys=False)
    if file is None:
        typer.echo(text, nl=False)
        return
    if file.exists() and not force:
        typer.echo(f"headstart init: {file} exists (--force replaces it)", err=True)
        raise typer.Exit(2)
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(file)
    typer.echo(f"wrote {file}", err=True)
