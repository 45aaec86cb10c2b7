"""The `huggingface` format: a Hugging Face model directory as `optimum` or `torch.onnx` export it (`model.onnx`,
`tokenizer.json`, `config.json`, and for sentence-transformers models `modules.json` and `1_Pooling/config.json`),
served by onnxruntime and `tokenizers`, without torch or transformers.

This module owns which file says what (the tokenizer, the graph, the labels, the pooling, the length limit), the
tasks and their tensors, and the rules model.yaml and the directory must follow: the plugin applies them at
package time, the runtime's handler reads the directory with them. Standard library only, Python 3.9.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

FORMAT = "huggingface"

TEXT_EMBEDDING = "text-embedding"
TEXT_CLASSIFICATION = "text-classification"
TASKS: Tuple[str, ...] = (TEXT_EMBEDDING, TEXT_CLASSIFICATION)

TOKENIZER_FILE = "tokenizer.json"  # the fast tokenizer: the one file `tokenizers` needs
CONFIG_FILE = "config.json"  # hidden_size, id2label, max_position_embeddings, problem_type
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"  # model_max_length
MODULES_FILE = "modules.json"  # sentence-transformers: the Pooling and Normalize modules, in order
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"  # sentence-transformers: max_seq_length
TRANSFORMER_MODULE = "sentence_transformers.models.Transformer"
POOLING_MODULE = "sentence_transformers.models.Pooling"
NORMALIZE_MODULE = "sentence_transformers.models.Normalize"
POOLING_MODES: Tuple[Tuple[str, str], ...] = (  # (1_Pooling/config.json key, mode), in sentence-transformers' order
    ("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean"))
# The files `read_text_model` reads besides each Pooling module's config.json (what package time hands over).
SPECIAL_TOKENS_FILE = "special_tokens_map.json"  # the pad token, when tokenizer_config.json does not say
SETTINGS_FILES: Tuple[str, ...] = (CONFIG_FILE, TOKENIZER_CONFIG_FILE, MODULES_FILE, SENTENCE_CONFIG_FILE,
                                   SPECIAL_TOKENS_FILE)

# What the tokenizer gives, as the ONNX graph's inputs are named by every exporter.
GRAPH_INPUTS: Tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
REQUIRED_GRAPH_INPUTS: Tuple[str, ...] = ("input_ids", "attention_mask")
# Models whose position ids start after the padding index: config.json's max_position_embeddings (514) counts
# positions a text never reaches.
POSITION_OFFSETS: Mapping[str, int] = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}
# A tokenizer_config.json model_max_length this large means "no limit" (transformers writes int(1e30)).
NO_LIMIT = 1_000_000

# Output roles: what each task can answer, and the tensor each role is.
EMBEDDING = "embedding"
LABEL = "label"
PROBABILITIES = "probabilities"
LOGITS = "logits"
TASK_ROLES: Mapping[str, Tuple[str, ...]] = {
    TEXT_EMBEDDING: (EMBEDDING,),
    TEXT_CLASSIFICATION: (LABEL, PROBABILITIES, LOGITS),
}
ROLE_TENSORS: Mapping[str, Tuple[str, int]] = {  # role -> (datatype, rank)
    EMBEDDING: ("FP32", 2), LABEL: ("BYTES", 1), PROBABILITIES: ("FP32", 2), LOGITS: ("FP32", 2)}
_ROLE_NAMES: Mapping[str, str] = {
    "embedding": EMBEDDING, "embeddings": EMBEDDING, "sentence_embedding": EMBEDDING,
    "label": LABEL, "labels": LABEL, "probabilities": PROBABILITIES, "scores": PROBABILITIES, "logits": LOGITS}


class TextModelError(ValueError):
    """What is wrong with the model directory: in one of its files (`path`, relative to the model directory), or in
    model.yaml (`path` empty), at `field`; printed `<file>: <field>: <problem> (<fix>)`."""

    def __init__(self, path: str, field: str, problem: str, fix: str) -> None:
        self.path, self.field, self.problem, self.fix = path, field, problem, fix
        super().__init__(f"{path or 'model.yaml'}: {field}: {problem} ({fix})")


NOT_JSON_FIX = "keep the file as the model was saved"


def not_json(path: str, error: Exception) -> TextModelError:
    """A directory file `read_json` could not parse."""
    return TextModelError(path, "(file)", f"is not JSON ({error})", NOT_JSON_FIX)


def parse_json(path: str, data: Optional[bytes]) -> Any:
    """A settings file's content as `read_json` returns it: None when absent; TextModelError when it is not UTF-8
    JSON (package time and the runtime say the same)."""
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise TextModelError(path, "(file)", "is not UTF-8 text", NOT_JSON_FIX) from None
    except ValueError as e:
        raise not_json(path, e) from None


@dataclass(frozen=True)
class TextModel:
    """What the directory's files say, paths relative to the model directory."""

    directory: str  # the folder holding tokenizer.json ("" for the model directory itself)
    tokenizer: str
    graph: str  # the .onnx file
    hidden_size: Optional[int]
    labels: Tuple[str, ...]  # config.json id2label, by id
    multi_label: bool  # problem_type multi_label_classification: sigmoid, not softmax
    regression: bool  # problem_type regression: scores, not classes
    pooling: str  # cls | max | mean
    normalize: bool
    model_limit: int  # tokens per text the model reads, from its files
    max_length: int  # tokens per text served: the model's limit, or model.yaml's lower `max_length`
    pad_token: str  # what pads a batch when tokenizer.json sets no padding


def task_of(data: Mapping[str, Any]) -> str:
    task = data.get("task")
    return task if isinstance(task, str) else ""


def output_roles(task: str, names: Sequence[str]) -> List[Optional[str]]:
    """Each declared output's role: by its name when it names one of the task's roles, else the task's first role
    not yet taken (so `[label, probabilities]` and `[predict, scores]` both work); None when none is left."""
    roles = TASK_ROLES.get(task, ())
    named = [_ROLE_NAMES.get(n) if _ROLE_NAMES.get(n) in roles else None for n in names]
    free = [r for r in roles if r not in named]
    out: List[Optional[str]] = []
    for role in named:
        out.append(role if role is not None else (free.pop(0) if free else None))
    return out


def _problem(field: str, problem: str, fix: str) -> Tuple[str, str, str]:
    return field, problem, fix


def record_problems(data: Mapping[str, Any]) -> Iterator[Tuple[str, str, str]]:
    """(field, problem, fix) for model.yaml of a huggingface model: the task, and tensors that fit it."""
    task = data.get("task")
    if task not in TASKS:
        yield _problem("task", f"{task!r} is not a task of format huggingface" if task is not None else "is missing",
                       "set `task:` to " + " or ".join(TASKS))
        return
    max_length = data.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2):
        yield _problem("max_length", f"{max_length!r} is not a number of tokens",
                       "give the longest text in tokens the model reads, e.g. 256, or leave it out for the model's")
    inputs = data.get("inputs")
    if isinstance(inputs, list):
        if len(inputs) != 1:
            yield _problem("inputs", f"declares {len(inputs)} inputs; a {task} model reads one",
                           "declare one input: {name: text, datatype: BYTES, shape: [-1]}")
        elif isinstance(inputs[0], dict) and (inputs[0].get("datatype") != "BYTES" or len(_shape(inputs[0])) != 1):
            yield _problem("inputs[0]", f"is {inputs[0].get('datatype')} {inputs[0].get('shape')}; texts are BYTES [-1]",
                           "declare it as datatype: BYTES, shape: [-1]")
    outputs = data.get("outputs")
    if not isinstance(outputs, list):
        yield _problem("outputs", "are missing", _outputs_fix(task))
        return
    named = [_ROLE_NAMES.get(str(o.get("name"))) if isinstance(o, dict) else None for o in outputs]
    for i, role in enumerate(named):
        if role is not None and role in TASK_ROLES[task] and named.index(role) != i:
            yield _problem(f"outputs[{i}].name", f"names the {role} again (as outputs[{named.index(role)}] does)",
                           "declare each of " + ", ".join(TASK_ROLES[task]) + " once")
    names = [o.get("name") if isinstance(o, dict) else None for o in outputs]
    for i, (tensor, role) in enumerate(zip(outputs, output_roles(task, [str(n) for n in names]))):
        if not isinstance(tensor, dict):
            continue
        if role is None:
            yield _problem(f"outputs[{i}]", f"is one output too many: a {task} model answers "
                           + ", ".join(TASK_ROLES[task]), _outputs_fix(task))
            continue
        datatype, rank = ROLE_TENSORS[role]
        if tensor.get("datatype") != datatype or len(_shape(tensor)) != rank:
            yield _problem(f"outputs[{i}]", f"is the {role} ({tensor.get('datatype')} {tensor.get('shape')}), which is "
                           f"{datatype} of rank {rank}", _outputs_fix(task))


def _shape(tensor: Mapping[str, Any]) -> List[Any]:
    shape = tensor.get("shape")
    return shape if isinstance(shape, list) else []


def _outputs_fix(task: str) -> str:
    if task == TEXT_EMBEDDING:
        return "declare {name: embedding, datatype: FP32, shape: [-1, D]}, D the model's hidden size"
    return ("declare {name: label, datatype: BYTES, shape: [-1]} and {name: probabilities, datatype: FP32, "
            "shape: [-1, C]} (optionally logits, FP32 [-1, C]), C the number of labels")


def locate(files: Sequence[str]) -> Tuple[str, str]:
    """(folder holding tokenizer.json, the .onnx graph) among the model files (posix paths)."""
    tokenizers = sorted(f for f in files if posixpath.basename(f) == TOKENIZER_FILE)
    if not tokenizers:
        raise TextModelError("", "files", f"no {TOKENIZER_FILE} among the model files", "a huggingface model needs "
                             "the fast tokenizer: save it with `tokenizer.save_pretrained(dir)` from a fast tokenizer")
    if len(tokenizers) > 1:
        raise TextModelError("", "files", f"several {TOKENIZER_FILE} files ({', '.join(tokenizers)})",
                             "keep one model directory")
    directory = posixpath.dirname(tokenizers[0])
    graphs = sorted(f for f in files if f.endswith(".onnx") and _inside(f, directory))
    if not graphs:
        raise TextModelError("", "files", f"no .onnx file beside {tokenizers[0]}", "export the model to ONNX "
                             "(`optimum-cli export onnx` or `torch.onnx.export`): omi serves it with onnxruntime")
    if len(graphs) > 1:
        raise TextModelError("", "files", f"several .onnx files ({', '.join(graphs)})", "keep the one to serve")
    return directory, graphs[0]


def _inside(path: str, directory: str) -> bool:
    return not directory or path.startswith(directory + "/")


def read_text_model(files: Sequence[str], read_json: Callable[[str], Any], max_length: Optional[int] = None
                    ) -> TextModel:
    """The directory's facts. `read_json(path)` returns a parsed file (None when absent) and raises
    `not_json(path, error)` for a file that is not JSON."""
    directory, graph = locate(files)

    def at(name: str) -> str:
        path = posixpath.normpath(posixpath.join(directory, name))
        if name.startswith("/") or path == ".." or path.startswith("../") or not _inside(path, directory):
            raise TextModelError(at(MODULES_FILE), "path", f"{name!r} points outside the model directory",
                                 "keep the modules.json sentence-transformers saved")
        return path

    config = read_json(at(CONFIG_FILE))
    if not isinstance(config, dict):
        raise TextModelError(at(CONFIG_FILE), "(file)", "is missing" if config is None else "is not a JSON object",
                             "keep the config.json the model was saved with")
    hidden = config.get("hidden_size", config.get("dim", config.get("d_model")))
    labels = _labels(config, at(CONFIG_FILE))
    pooling, normalize = _pooling(read_json, at)
    # sentence-transformers' own length wins over the tokenizer's; neither may pass the position embeddings.
    tokenizer_config = read_json(at(TOKENIZER_CONFIG_FILE))
    wanted = _int(read_json(at(SENTENCE_CONFIG_FILE)), "max_seq_length") or _limit(tokenizer_config)
    positions = _int(config, "max_position_embeddings")
    if positions is not None:
        positions -= POSITION_OFFSETS.get(str(config.get("model_type")), 0)
    limit = min([n for n in (wanted, positions) if n] or [512])
    return TextModel(directory=directory, tokenizer=at(TOKENIZER_FILE), graph=graph,
                     hidden_size=hidden if isinstance(hidden, int) else None, labels=labels,
                     multi_label=config.get("problem_type") == "multi_label_classification",
                     regression=config.get("problem_type") == "regression",
                     pooling=pooling, normalize=normalize, model_limit=limit,
                     max_length=min(limit, max_length) if max_length is not None else limit,
                     pad_token=_token(tokenizer_config, "pad_token") or _token(read_json(at(SPECIAL_TOKENS_FILE)),
                                                                                "pad_token") or "[PAD]")


def _int(doc: Any, key: str) -> Optional[int]:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _token(doc: Any, key: str) -> Optional[str]:
    """A special token as transformers saves it: the string, or an AddedToken's `content`."""
    value = doc.get(key) if isinstance(doc, dict) else None
    value = value.get("content") if isinstance(value, dict) else value
    return value if isinstance(value, str) and value else None


def _limit(tokenizer_config: Any) -> Optional[int]:
    value = _int(tokenizer_config, "model_max_length")
    return value if value is not None and value < NO_LIMIT else None


def _labels(config: Mapping[str, Any], where: str) -> Tuple[str, ...]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return ()
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except ValueError:
        raise TextModelError(where, "id2label", "keys are not class ids", "number the labels 0, 1, ... as "
                             "transformers saves them") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise TextModelError(where, "id2label", f"ids {sorted(by_id)} are not 0..{len(by_id) - 1}",
                             "number the labels 0, 1, ... as transformers saves them")
    return tuple(by_id[i] for i in range(len(by_id)))


def _pooling(read_json: Callable[[str], Any], at: Callable[[str], str]) -> Tuple[str, bool]:
    """sentence-transformers' pooling and normalisation; a plain transformer model: mean pooling, as is."""
    modules = read_json(at(MODULES_FILE))
    if modules is None:
        return "mean", False
    if not isinstance(modules, list):
        raise TextModelError(at(MODULES_FILE), "(file)", "is not a list of modules",
                             "keep the modules.json sentence-transformers saved")
    pooling, normalize = "mean", False
    for module in modules:
        kind = module.get("type") if isinstance(module, dict) else None
        if kind == NORMALIZE_MODULE:
            normalize = True
        elif kind == POOLING_MODULE:
            where = at(posixpath.join(str(module.get("path") or ""), CONFIG_FILE))
            settings = read_json(where)
            if not isinstance(settings, dict):
                raise TextModelError(where, "(file)", "is missing" if settings is None else "is not a JSON object",
                                     "keep the Pooling module's config.json sentence-transformers saved")
            served = {key for key, _ in POOLING_MODES}
            other = sorted(k for k, v in settings.items() if k.startswith("pooling_mode_") and v and k not in served)
            modes = [mode for key, mode in POOLING_MODES if settings.get(key)]
            if other or len(modes) != 1:
                problem = f"sets {', '.join(other)}, which omi does not serve" if other else \
                    f"sets {' and '.join(modes) or 'no'} pooling mode"
                raise TextModelError(where, "pooling_mode_*", problem,
                                     "pool with one of " + ", ".join(sorted(served)))
            pooling = modes[0]
        elif kind != TRANSFORMER_MODULE:
            raise TextModelError(at(MODULES_FILE), "type", f"module {kind!r} is not one omi serves (it serves "
                                 "Transformer, Pooling, Normalize)", "export the extra module into the ONNX graph, "
                                 "or serve the model with a custom handler")
    return pooling, normalize


def directory_problems(data: Mapping[str, Any], model: TextModel,
                       graph_inputs: Optional[Sequence[str]]) -> Iterator[Tuple[str, str, str]]:
    """(field, problem, fix) where model.yaml and the directory disagree: D, C, and the graph's inputs."""
    task = task_of(data)
    outputs = [o for o in data.get("outputs") or [] if isinstance(o, dict)]
    for i, (tensor, role) in enumerate(zip(outputs, output_roles(task, [str(o.get("name")) for o in outputs]))):
        width = _shape(tensor)[1] if len(_shape(tensor)) == 2 else -1
        if role == EMBEDDING and model.hidden_size is not None and width not in (-1, model.hidden_size):
            yield _problem(f"outputs[{i}].shape", f"says {width} dimensions; the model's hidden_size is "
                           f"{model.hidden_size}", f"declare shape [-1, {model.hidden_size}]")
        if role in (PROBABILITIES, LOGITS) and width not in (-1, len(model.labels)) and model.labels:
            yield _problem(f"outputs[{i}].shape", f"says {width} classes; config.json id2label has "
                           f"{len(model.labels)}", f"declare shape [-1, {len(model.labels)}]")
    max_length = data.get("max_length")
    if isinstance(max_length, int) and max_length > model.model_limit:
        yield _problem("max_length", f"{max_length} is more than the model reads ({model.model_limit} tokens, from "
                       "its config files)", "lower it, or leave it out")
    if task == TEXT_CLASSIFICATION and model.regression:
        yield _problem("task", "is text-classification, but config.json says problem_type regression (one score)",
                       "serve a regression model with format onnx, or save the classifier with its labels")
    if task == TEXT_CLASSIFICATION and not model.labels:
        yield _problem("task", "is text-classification, but config.json has no id2label",
                       "save the model with its label names (config.id2label)")
    if graph_inputs is not None:
        unknown = [n for n in graph_inputs if n not in GRAPH_INPUTS]
        missing = [n for n in REQUIRED_GRAPH_INPUTS if n not in graph_inputs]
        if unknown or missing:
            yield _problem("files", f"{model.graph} takes inputs {list(graph_inputs)}; the tokenizer gives "
                           + ", ".join(GRAPH_INPUTS), "export the graph with inputs "
                           + ", ".join(REQUIRED_GRAPH_INPUTS) + " (and token_type_ids if the model uses them)")


def check_directory(data: Mapping[str, Any], files: Sequence[str], read_json: Callable[[str], Any],
                    graph_inputs: Callable[[str], Optional[Sequence[str]]]) -> Optional[TextModelError]:
    """The first thing wrong with a huggingface model's directory as model.yaml declares it (OMI116), or None."""
    max_length = data.get("max_length")
    try:
        model = read_text_model(files, read_json, max_length if isinstance(max_length, int) else None)
        inputs = graph_inputs(model.graph)
    except TextModelError as e:
        return e
    for where, problem, fix in directory_problems(data, model, inputs):
        return TextModelError("", where, problem, fix)
    return None


@dataclass(frozen=True)
class DirectoryFacts:
    """What package time reads of a huggingface model's files without loading it, as JSON for the checker's sandbox:
    the small JSON files (relative path -> text) and each ONNX graph's inputs (relative path -> names, or why they
    could not be read)."""

    documents: Mapping[str, Optional[str]] = field(default_factory=dict)  # None: not UTF-8
    graphs: Mapping[str, Tuple[Tuple[str, ...], str]] = field(default_factory=dict)

    @staticmethod
    def read(files: Sequence[Tuple[str, str]], open_file: Optional[Callable[[str], BinaryIO]] = None
             ) -> "DirectoryFacts":
        """From disk: `files` pairs each model file's relative path with where it is (opened by `open_file`). Only
        the settings files are read (a Pooling module's is a config.json too), whole and strictly as UTF-8, as the
        runtime reads them, and each ONNX graph's inputs."""
        from omi_contract.model_files import open_binary
        from omi_contract.onnx_graph import OnnxGraphError, graph_io

        opener = open_file or open_binary

        documents: Dict[str, Optional[str]] = {}
        graphs: Dict[str, Tuple[Tuple[str, ...], str]] = {}
        for rel, path in files:
            rel = posixpath.normpath(rel)
            try:
                if posixpath.basename(rel) in SETTINGS_FILES:
                    with opener(path) as f:
                        data = f.read()
                    try:
                        documents[rel] = data.decode("utf-8")
                    except UnicodeDecodeError:
                        documents[rel] = None  # judged by `parse_json`, as the runtime would
                elif rel.endswith(".onnx"):
                    graphs[rel] = (tuple(graph_io(path, opener)[0]), "")
            except OnnxGraphError as e:
                graphs[rel] = ((), str(e))
            except OSError:
                continue  # reported by the step that reads the file for its layer
        return DirectoryFacts(documents, graphs)

    def to_json(self) -> str:
        return json.dumps({"documents": dict(self.documents),
                           "graphs": {k: [list(v[0]), v[1]] for k, v in self.graphs.items()}}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "DirectoryFacts":
        doc = json.loads(text)
        return DirectoryFacts(doc["documents"], {k: (tuple(v[0]), v[1]) for k, v in doc["graphs"].items()})

    def read_json(self, rel: str) -> Any:
        if rel not in self.documents:
            return None
        text = self.documents[rel]
        return parse_json(rel, text.encode("utf-8") if text is not None else b"\xff")

    def graph_inputs(self, rel: str) -> Optional[Sequence[str]]:
        names, error = self.graphs.get(rel, ((), "it was not read"))
        if error:
            raise TextModelError(rel, "(file)", f"cannot be read as an ONNX graph: {error}",
                                 "export the model to ONNX again")
        return names

    def check(self, data: Mapping[str, Any], files: Sequence[str]) -> Optional[TextModelError]:
        return check_directory(data, files, self.read_json, self.graph_inputs)
