"""Built-in handler for MLflow models (format: mlflow): an MLflow model directory served through `mlflow.pyfunc`.

The model directory is the one holding the `MLmodel` file among the declared files. Declared inputs map to the
model's signature by name when the names match, else by position:
- a tensor-based signature (or none) gets the one declared input as an array, several as a dict of arrays;
- a column-based signature gets a pandas DataFrame, one column per declared input, or the columns of a single
  declared `[-1, n]` input split over the signature's `n` columns.
The prediction maps to the declared outputs: an array or Series is the first output, a DataFrame's columns and a
dict's keys map by name, else by position. omi checks the signature against model.yaml at package time
(`omi_plugin.metadata.mlflow_model`), so a mismatch here means the image was built around another model.

MLflow's tracing is switched off before the model loads: with no tracking server it would try to create
`./mlruns`, which a read-only image cannot hold.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from omi_contract.tensor_names import match_positions
from omi_runtime.handlers.base import Handler, ModelContext

MLMODEL = "MLmodel"


def _by_name_or_position(declared: Sequence[str], actual: Sequence[str]) -> dict[str, str]:
    """declared name -> the model's name, by the contract's rule (`omi_contract.tensor_names`)."""
    return {declared[i]: actual[j] for i, j in match_positions(declared, actual)}


class MlflowHandler(Handler):
    def __init__(self) -> None:
        self.model: Any = None
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self.columns: list[str] | None = None  # the signature's column names, for a column-based signature
        self.tensor_names: list[str] = []  # the signature's tensor names, when it names them

    def load(self, context: ModelContext) -> None:
        import mlflow.pyfunc  # heavy: only for MLflow models
        import mlflow.tracing

        mlflow.tracing.disable()
        mlmodel = next((p for p in context.model_files() if p.name == MLMODEL), None)
        if mlmodel is None:
            raise FileNotFoundError(f"model {context.metadata.name}: no {MLMODEL} file among the declared files")
        self.model = context.load_model_file(lambda directory: mlflow.pyfunc.load_model(str(directory)), mlmodel.parent)
        self.input_names = [t.name for t in context.metadata.inputs]
        self.output_names = [t.name for t in context.metadata.outputs]
        schema = self.model.metadata.get_input_schema()
        if schema is not None and not schema.is_tensor_spec():
            self.columns = list(schema.input_names())
        elif schema is not None and schema.has_input_names():
            self.tensor_names = list(schema.input_names())

    def model_input(self, inputs: Mapping[str, np.ndarray]) -> Any:
        if self.columns is not None:
            import pandas as pd

            if len(self.input_names) == 1 and len(self.columns) > 1:
                matrix = inputs[self.input_names[0]]
                return pd.DataFrame(matrix.reshape(len(matrix), -1), columns=self.columns)
            mapping = _by_name_or_position(self.input_names, self.columns)
            return pd.DataFrame({mapping[n]: inputs[n].reshape(len(inputs[n])) for n in self.input_names})
        if len(self.input_names) == 1:
            return inputs[self.input_names[0]]
        mapping = _by_name_or_position(self.input_names, self.tensor_names or self.input_names)
        return {mapping[n]: inputs[n] for n in self.input_names}

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.model_output(self.model.predict(self.model_input(inputs)))

    def model_output(self, predicted: Any) -> dict[str, np.ndarray]:
        names = self.output_names
        if isinstance(predicted, Mapping):
            keys = list(predicted)
            mapping = _by_name_or_position(names, keys)
            return {n: np.asarray(predicted[mapping[n]]) for n in names if n in mapping}
        columns = getattr(predicted, "columns", None)
        if columns is not None and len(names) > 1:  # a DataFrame with one output per column
            mapping = _by_name_or_position(names, [str(c) for c in columns])
            by_label = {str(c): c for c in columns}
            return {n: predicted[by_label[mapping[n]]].to_numpy() for n in names if n in mapping}
        value = predicted.to_numpy() if hasattr(predicted, "to_numpy") else np.asarray(predicted)
        return {names[0]: value}
